"""zram recompression against numbers derived by hand from zram_drv.c
(recomp_algorithm_store, recompress_store, zram_recompress of 6.6 and 6.12,
recompress_slot of 6.13+ with 6.15's loop rework) and zsmalloc's class
table for chains of 8 (6.3's rule: the chain of 1..8 pages wasting the
fewest bytes, a power of two on one page; classes of equal pages and
objects merged into the larger).

zs_lookup_class_index(L) takes the length as given (no 8-byte handle):
index ceil((L - 32) / 16), then the merged class holding it.
- 800 (index 48): one page holds 5 (96 wasted; 2 pages 192, ... 8 pages
  768), as 816 (index 49: one page, 5, 16 wasted) does: class 49.
- 992 (index 60): 8 pages hold 33 (32 wasted, the least): class 60.
- 1008 (index 61): one page holds 4 (64 wasted; 2 pages 128 ... 8 pages
  512), the geometry of 1024 (index 62, a power of two): so 993..1024 are
  all class 62.
- 2000..2048 (indexes 123..126): 2048 is one page of 2; 2000 wastes 96 on
  one page, 192 on two, ..., and 2032's 32: all one page of 2, class 126.
- 3632 (index 225): 8 pages hold 9 (80 wasted), not huge.  3648 (index
  226): one page of one (448 wasted, the least): huge, merged with every
  class up to 4096 (index 254).  huge_class_size = 3632 - 7 = 3625.
"""

import pytest

from test_zram import page
from test_zram_wb import Sized
from zswapsim.errors import ConfigError
from zswapsim.zram import Zram


def device_with(primary, secondaries=(), kernel="6.12", backing=0, pages=16):
    """A device whose primary gives page n primary[n] bytes, with one
    secondary algorithm per dict in `secondaries` at priorities 1, 2, ...,
    named alg1, alg2, ...; pages 0.. written in order."""
    device = Zram(pages * 4096, compressor=Sized(primary), kernel=kernel,
                  backing_dev_pages=backing)
    for prio, lengths in enumerate(secondaries, 1):
        device.recomp_algorithm(f"algo=alg{prio} priority={prio}", compressor=Sized(lengths))
    for n in primary:
        assert device.write(n, page(n))
    return device


def reads_back(device):
    return all(device.read(n) == page(n) for n in device.slots)


def test_class_drop_rule_at_a_class_boundary():
    # 1000 is class 62; 1008 (index 61) is merged into 62: no drop; 992 is
    # class 60: kept; 1009 is index 62 itself: no drop.  One secondary that
    # missed the drop marks the slot INCOMPRESSIBLE (6.12: every secondary
    # tried in this walk, and the last missed the class).
    device = device_with({0: 1000, 1: 1000, 2: 1000}, [{0: 1008, 1: 992, 2: 1009}])
    assert device.recompress("") == {"recompressed": 1, "attempted": 3, "incompressible": 2}
    assert [device.slots[n].size for n in range(3)] == [1000, 992, 1000]
    assert [device.slots[n].priority for n in range(3)] == [0, 1, 0]
    assert [device.slots[n].incompressible for n in range(3)] == [True, False, True]
    assert device.mm_stat()["compr_data_size"] == 1000 + 992 + 1000
    assert device.recompress("") == {"recompressed": 0, "attempted": 0, "incompressible": 0}
    assert reads_back(device)


def test_huge_page_kept_at_a_length_above_huge_class_size():
    # 3700 >= 3625: stored as 4096 bytes, class 254.  3632 is class 225:
    # kept although >= huge_class_size (zs_malloc's 3640 then lands in the
    # one-object class), no longer HUGE; 3633 is class 254: no drop.
    device = device_with({0: 3700, 1: 3700, 2: 1000}, [{0: 3632, 1: 3633, 2: 500}],
                         backing=4)
    before = device.mm_stat()
    assert (before["huge_pages"], before["huge_pages_since"]) == (2, 2)
    assert before["mem_used_total"] == 3 * 4096      # two one-page objects, one page of 4
    assert device.recompress("type=huge") == {"recompressed": 1, "attempted": 2,
                                              "incompressible": 1}
    stat = device.mm_stat()
    assert (stat["huge_pages"], stat["huge_pages_since"]) == (1, 2)
    assert stat["compr_data_size"] == 3632 + 4096 + 1000
    assert stat["mem_used_total"] == 3 * 4096       # 3640 still takes a page of its own
    assert stat["mem_used_max"] == before["mem_used_max"]
    assert not device.slots[0].huge and device.slots[1].huge
    assert device.slots[2].size == 1000               # not huge: type=huge left it
    assert reads_back(device)
    # ZRAM_INCOMPRESSIBLE: writeback=incompressible finds exactly that slot
    assert device.writeback("incompressible") == (1, None)
    assert device.slots[1].block == 1
    assert device.mm_stat()["huge_pages"] == 0
    assert reads_back(device)


def test_huge_idle_takes_idle_huge_slots_and_success_clears_idle():
    device = device_with({0: 3700, 1: 3700, 2: 1000}, [{0: 2000, 1: 2000, 2: 500}])
    device.clock_ns = 5 * 10 ** 9
    device.mark_idle("all")
    assert device.read(1) == page(1)                  # accessed: no longer IDLE
    assert device.recompress("type=huge_idle") == {"recompressed": 1, "attempted": 1,
                                                   "incompressible": 0}
    slot = device.slots[0]
    # zram_free_page of the old object: IDLE cleared, ac_time 0
    assert (slot.size, slot.idle, slot.ac_time, slot.huge) == (2000, False, 0, False)
    assert device.recompress("type=idle") == {"recompressed": 1, "attempted": 1,
                                              "incompressible": 0}
    assert device.slots[2].size == 500 and device.slots[1].size == 4096
    assert reads_back(device)


@pytest.mark.parametrize("kernel, kept", [("6.12", {0, 1}), ("6.18", {1, 2})])
def test_max_pages_in_each_kernels_order(kernel, kept):
    # halves always drop a class.  6.12 walks the indexes; 6.18 takes the
    # pp buckets (size // 64) from the top: 3000 -> 46, 2000 -> 31,
    # 1500 -> 23, 1000 -> 15, so slots 2 then 1.
    primary = {0: 1000, 1: 2000, 2: 3000, 3: 1500}
    device = device_with(primary, [{n: length // 2 for n, length in primary.items()}],
                         kernel=kernel)
    assert device.recompress("max_pages=0")["attempted"] == 0
    assert device.recompress("max_pages=2") == {"recompressed": 2, "attempted": 2,
                                                "incompressible": 0}
    assert {n for n, slot in device.slots.items() if slot.priority} == kept
    assert reads_back(device)


def test_a_miss_counts_against_max_pages_a_small_object_does_not():
    device = device_with({0: 1000, 1: 2000, 2: 2000}, [{0: 500, 1: 2040, 2: 1000}])
    # threshold 1200: slot 0 (1000 < 1200) left uncounted; slot 1 tried and
    # missed (2040 is class 126 too), the one page max_pages allows
    assert device.recompress("threshold=1200 max_pages=1") == {
        "recompressed": 0, "attempted": 1, "incompressible": 1}
    assert device.slots[2].size == 2000
    assert device.recompress("threshold=1200") == {"recompressed": 1, "attempted": 1,
                                                   "incompressible": 0}
    assert device.slots[2].size == 1000 and device.slots[0].size == 1000


@pytest.mark.parametrize("kernel, marked", [("6.12", False), ("6.18", True)])
def test_a_threshold_miss_marks_incompressible_from_6_15(kernel, marked):
    # 1300 is class 80 (< 126): a drop, but not under threshold 1200.
    # 6.12 marks only a class miss; 6.15+ marks a walk that ran to the end.
    device = device_with({0: 2000}, [{0: 1300}], kernel=kernel)
    assert device.recompress("threshold=1200")["recompressed"] == 0
    assert device.slots[0].incompressible is marked
    assert device.slots[0].size == 2000


@pytest.mark.parametrize("kernel", ["6.12", "6.18"])
def test_priority_order_with_two_secondaries(kernel):
    # 2000 is class 126.  alg1: 1000 (class 62) | 2040 (126) | 2040;
    # alg2: 800 (class 49) | 1000 (62) | 2048 (126).
    device = device_with({0: 2000, 1: 2000, 2: 2000},
                         [{0: 1000, 1: 2040, 2: 2040}, {0: 800, 1: 1000, 2: 2048}],
                         kernel=kernel, backing=4)
    assert device.recompress("") == {"recompressed": 2, "attempted": 3, "incompressible": 1}
    assert [(device.slots[n].size, device.slots[n].priority) for n in range(3)] == [
        (1000, 1), (1000, 2), (2000, 0)]
    assert device.slots[2].incompressible
    assert reads_back(device)                          # each with its own algorithm
    # again: slot 0 tries only alg2 (800, class 49 < 62); slot 1 is at the
    # last priority and slot 2 INCOMPRESSIBLE: neither is tried
    assert device.recompress("") == {"recompressed": 1, "attempted": 1, "incompressible": 0}
    assert (device.slots[0].size, device.slots[0].priority) == (800, 2)
    assert device.mm_stat()["compr_data_size"] == 800 + 1000 + 2000
    assert reads_back(device)
    assert device.writeback("incompressible") == (1, None)
    assert device.slots[2].block is not None and reads_back(device)


@pytest.mark.parametrize("kernel, marked", [("6.12", False), ("6.18", True)])
def test_algo_limits_the_walk_to_its_priority(kernel, marked):
    # both miss (class 126); algo=alg2 walks priority 2 alone.  6.12: one
    # of two secondaries tried, no mark; 6.15+: the walk reached the last
    # priority, marked.
    device = device_with({0: 2000, 1: 2000}, [{0: 1000, 1: 2040}, {0: 2040, 1: 2048}],
                         kernel=kernel)
    assert device.recompress("algo=alg2") == {"recompressed": 0, "attempted": 2,
                                              "incompressible": 2 * marked}
    assert device.slots[0].incompressible is marked
    assert device.slots[0].priority == 0              # alg1 (which would drop) not tried
    assert device.recompress("priority=1")["recompressed"] == 1 - marked


def test_a_written_back_or_same_filled_slot_is_never_taken():
    device = device_with({0: 2000, 1: 2000}, [{0: 1000, 1: 1000}], backing=4)
    device.write(2, bytes(4096))
    assert device.writeback("page_index=0") == (1, None)
    assert device.recompress("") == {"recompressed": 1, "attempted": 1, "incompressible": 0}
    assert device.slots[0].block == 1 and device.slots[2].word is not None
    assert [device.read(n) for n in range(3)] == [page(0), page(1), bytes(4096)]


def test_real_compressors_and_reads_back():
    # lz4 then zstd (6.12's backend, level 3) on pages that compress
    device = Zram(1 << 20, compressor="lz4", kernel="6.12")
    device.recomp_algorithm("algo=zstd priority=1")
    pages = [bytes([n]) * 100 + bytes(range(256)) * 15 + b"x" * 60 + bytes(96)
             for n in range(8)]
    for n, data in enumerate(pages):
        device.write(n, data)
    before = device.mm_stat()["compr_data_size"]
    outcome = device.recompress("")
    assert outcome["attempted"] == 8
    assert device.mm_stat()["compr_data_size"] <= before
    assert [device.read(n) for n in range(8)] == pages


def test_recomp_algorithm_params_per_priority():
    device = Zram(1 << 20, compressor="lz4", kernel="6.12")
    device.recomp_algorithm("algo=zstd priority=2", params="level=19")
    assert device.comp_algs == [device.compressor.name, None, "zstd", None]
    with pytest.raises(ConfigError, match="reads no 'winbits'"):
        device.recomp_algorithm("algo=zstd priority=1", params="winbits=9")
    old = Zram(1 << 20, compressor="lz4", kernel="6.6")
    with pytest.raises(ConfigError, match="no algorithm_params"):
        old.recomp_algorithm("algo=zstd", params="level=19")


def test_algorithm_params_by_priority_or_name():
    # algorithm_params_store: priority=N names the slot; algo=NAME the first
    # priority with that name; backend_zstd's default level is 3
    device = Zram(1 << 20, compressor="lz4", kernel="6.12")
    device.recomp_algorithm("algo=zstd priority=1")
    device.recomp_algorithm("algo=zstd priority=2")
    device.recomp_algorithm_params("priority=2 level=1")
    assert (device.comps[1].level, device.comps[2].level) == (3, 1)
    device.recomp_algorithm_params("algo=zstd level=19")
    assert (device.comps[1].level, device.comps[2].level) == (19, 1)
    with pytest.raises(ConfigError, match="name a secondary algorithm"):
        device.recomp_algorithm_params("priority=3 level=1")
    with pytest.raises(ConfigError, match="no secondary algorithm lz4hc"):
        device.recomp_algorithm_params("algo=lz4hc level=1")


@pytest.mark.parametrize("text, message", [
    ("algo=zstd priority=4", "priority 4 is not 1..3 (-EINVAL)"),
    ("algo=zstd priority=0", "priority 0 is not 1..3 (-EINVAL)"),
    ("priority=1", "no algo=NAME (-EINVAL)"),
    ("algo=nope", "unknown compressor 'nope'"),
    ("algo=zstd prio=1", "reads algo and priority, not 'prio'"),
    ("algo", "'algo' is not KEY=VALUE (-EINVAL)"),
    ("algo=zstd priority=one", "priority=one is not a decimal number"),
])
def test_recomp_algorithm_einval(text, message):
    device = Zram(1 << 20, kernel="6.12")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        device.recomp_algorithm(text)


def test_recomp_algorithm_after_the_first_write_is_ebusy():
    device = Zram(1 << 20, kernel="6.6")
    device.write(0, page(0))
    with pytest.raises(ConfigError, match="before disksize \\(-EBUSY\\)"):
        device.recomp_algorithm("algo=zstd")


@pytest.mark.parametrize("kernel, secondaries, text, message", [
    ("6.12", [], "type=huge", "no secondary algorithm at priority 1 or above"),
    ("6.18", [], "type=huge", "no secondary algorithm to try (priorities 1 and up, 0 "
                              "configured; -EINVAL)"),
    ("6.12", [{}], "threshold=3625", "threshold 3625 is not below huge_class_size 3625"),
    ("6.12", [{}], "type=cold", "type=cold is not one of idle, huge, huge_idle"),
    ("6.12", [{}], "watermark=100", "reads type, threshold, max_pages, algo, priority, not "
                                    "'watermark'"),
    ("6.6", [{}], "priority=1", "6.6's recompress reads type, threshold, max_pages, algo, "
                                "not 'priority'"),
    ("6.18", [{}], "priority=2", "no secondary algorithm to try (priorities 2 and up, 1 "
                                 "configured; -EINVAL)"),
    ("6.12", [{}], "priority=3", "no secondary algorithm at priority 3 or above"),
    ("6.12", [{}], "algo=zstd", "no secondary algorithm zstd at priority 1 or above"),
    ("6.12", [{}], "type", "'type' is not KEY=VALUE"),
    ("6.12", [{}], "max_pages=-1", "max_pages=-1 is not a decimal number"),
    ("6.12", [{}], "threshold=4294967296", "threshold=4294967296 is not a decimal number"),
    ("6.1", [], "type=huge", "6.1's zram: no recompression (that came in 6.2 "),
])
def test_recompress_einval(kernel, secondaries, text, message):
    device = Zram(1 << 20, compressor=Sized({}), kernel=kernel)
    for prio, lengths in enumerate(secondaries, 1):
        device.recomp_algorithm(f"algo=alg{prio} priority={prio}", compressor=Sized(lengths))
    with pytest.raises(ConfigError) as error:
        device.recompress(text)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_threshold_just_below_huge_class_size_is_taken():
    device = device_with({0: 3700}, [{0: 3600}])
    # 3600 is class 225 (< 254), and under threshold 3624
    assert device.recompress("threshold=3624 type=huge")["recompressed"] == 1
