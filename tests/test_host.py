"""`zswapsim host` and `zswapsim kernel-check` against fake /sys and /proc
trees laid out as real kernels lay them out.

The layouts come from the kernel's sources: zram_drv.c's mm_stat_show
(nine fields in 6.1, 6.12 and 6.18), io_stat_show (invalid_io printed as a
literal 0 since 6.4) and bd_stat_show (three fields, CONFIG_ZRAM_WRITEBACK
only); mm/zswap.c's zswap_debugfs_init (6.1: ten files with duplicate_entry
and same_filled_pages; 6.12: those two gone, reject_compress_fail new; 6.18:
decompress_fail and stored_incompressible_pages too) and its module
parameters (no zpool in 6.18).  The counter values are what Debian's 6.1,
6.12 and 6.18 kernels reported for the mix2000 page set
(/work/shared/fidelity, zswap lz4 runs; zram lz4 mm_stat), so every name
is checked against a number a kernel printed under it.
"""

import errno
import json
import os
import random
import signal

import pytest

from zswapsim import cli, host
from zswapsim.errors import ConfigError
from zswapsim.trace import TraceWriter

PAGE = 4096

# The field order of the kernel's show functions, written out from the source.
MM_STAT_ORDER = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit",
                 "mem_used_max", "same_pages", "pages_compacted", "huge_pages",
                 "huge_pages_since")

LAYOUTS = {
    "6.1": {
        "release": "6.1.0-56-amd64",
        "parameters": {"enabled": "Y", "compressor": "lz4", "zpool": "zbud",
                       "max_pool_percent": "50", "accept_threshold_percent": "90",
                       "same_filled_pages_enabled": "Y",
                       "non_same_filled_pages_enabled": "Y"},
        "debugfs": {"pool_limit_hit": 0, "reject_reclaim_fail": 0, "reject_alloc_fail": 0,
                    "reject_kmemcache_fail": 0, "reject_compress_poor": 1,
                    "written_back_pages": 0, "duplicate_entry": 0, "pool_total_size": 4620288,
                    "stored_pages": 1697, "same_filled_pages": 248},
        "vmstat": {"pswpin": 0, "pswpout": 303, "zswpin": 0, "zswpout": 1697},
        "mm_stat": (8192000, 4870025, 5271552, 0, 5271552, 248, 0, 433, 433),
        "io_stat": ("1", "2", "3", "4"),
        "bd_stat": ("5", "6", "7"),
        "comp_algorithm": "lzo [lzo-rle] lz4 lz4hc 842 zstd",
        "profiles": ("6.1", None, "6.1", None),
    },
    "6.12": {
        "release": "6.12.117+deb12-amd64",
        "parameters": {"enabled": "Y", "shrinker_enabled": "N", "compressor": "lz4",
                       "zpool": "zbud", "max_pool_percent": "50",
                       "accept_threshold_percent": "90"},
        "debugfs": {"pool_limit_hit": 0, "reject_reclaim_fail": 0, "reject_alloc_fail": 0,
                    "reject_kmemcache_fail": 0, "reject_compress_fail": 302,
                    "reject_compress_poor": 1, "written_back_pages": 0,
                    "pool_total_size": 4591616, "stored_pages": 1606},
        "vmstat": {"pswpin": 0, "pswpout": 303, "zswpin": 0, "zswpout": 1606, "zswpwb": 0,
                   "swpin_zero": 0, "swpout_zero": 91},
        "mm_stat": (8192000, 4787480, 5726208, 0, 5726208, 248, 0, 318, 318),
        "io_stat": ("1", "2", "0", "4"),
        "bd_stat": ("5", "6", "7"),
        "comp_algorithm": "[lz4] lz4hc zstd deflate",
        "profiles": ("6.12", None, "6.12", None),
    },
    "6.18": {
        "release": "6.18.15+deb13-amd64",
        "parameters": {"enabled": "Y", "shrinker_enabled": "N", "compressor": "lz4",
                       "max_pool_percent": "50", "accept_threshold_percent": "90"},
        "debugfs": {"pool_limit_hit": 0, "reject_reclaim_fail": 0, "reject_alloc_fail": 0,
                    "reject_kmemcache_fail": 0, "reject_compress_fail": 0,
                    "reject_compress_poor": 0, "decompress_fail": 0, "written_back_pages": 0,
                    "pool_total_size": 5738496, "stored_pages": 1909,
                    "stored_incompressible_pages": 302},
        "vmstat": {"pswpin": 0, "pswpout": 0, "zswpin": 0, "zswpout": 1909, "zswpwb": 0,
                   "swpin_zero": 0, "swpout_zero": 91},
        "mm_stat": (8192000, 4787480, 5726208, 0, 5726208, 248, 0, 318, 318),
        "io_stat": ("1", "2", "0", "4"),
        "bd_stat": None,                                # CONFIG_ZRAM_WRITEBACK off
        "comp_algorithm": "lzo-rle lzo [lz4]",
        "profiles": ("6.18", None, "6.18", None),
    },
}
# vmstat lines the command must leave out (thp_swpout is not a zswp/pswp line).
OTHER_VMSTAT = {"nr_free_pages": 12345, "pgpgin": 77, "thp_swpout": 5, "swap_ra": 9}


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_tree(root, layout):
    kernel = LAYOUTS[layout]
    write(root / "proc/sys/kernel/osrelease", kernel["release"] + "\n")
    for name, value in kernel["parameters"].items():
        write(root / "sys/module/zswap/parameters" / name, value + "\n")
    for name, value in kernel["debugfs"].items():
        write(root / "sys/kernel/debug/zswap" / name, f"{value}\n")
    lines = {**OTHER_VMSTAT, **kernel["vmstat"]}
    write(root / "proc/vmstat", "".join(f"{name} {value}\n" for name, value in lines.items()))
    zram0 = root / "sys/block/zram0"
    write(zram0 / "mm_stat", " ".join(f"{value:8d}" for value in kernel["mm_stat"]) + "\n")
    write(zram0 / "io_stat", " ".join(f"{value:>8}" for value in kernel["io_stat"]) + "\n")
    if kernel["bd_stat"]:
        write(zram0 / "bd_stat", " ".join(f"{value:>8}" for value in kernel["bd_stat"]) + "\n")
    write(zram0 / "comp_algorithm", kernel["comp_algorithm"] + "\n")
    (root / "sys/block/vda").mkdir()
    return root


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_host_reads_each_layout_under_the_kernels_names(tmp_path, layout):
    kernel = LAYOUTS[layout]
    report = host.read_host(fake_tree(tmp_path, layout))
    assert report["release"] == kernel["release"]
    zswap_kernel, zswap_note, zram_kernel, zram_note = kernel["profiles"]
    assert report["profiles"] == {"zswap": {"kernel": zswap_kernel, "note": zswap_note},
                                  "zram": {"kernel": zram_kernel, "note": zram_note}}
    expected_parameters = {name: int(value) if value.isdigit() else value
                           for name, value in kernel["parameters"].items()}
    assert report["zswap_parameters"] == expected_parameters
    assert report["zswap_debugfs"] == kernel["debugfs"]
    assert report["vmstat"] == kernel["vmstat"]
    assert list(report["zram"]) == ["zram0"]
    zram0 = report["zram"]["zram0"]
    assert zram0["mm_stat"] == dict(zip(MM_STAT_ORDER, kernel["mm_stat"]))
    assert zram0["io_stat"] == {"failed_reads": 1, "failed_writes": 2,
                                "invalid_io": int(kernel["io_stat"][2]), "notify_free": 4}
    if kernel["bd_stat"]:
        assert zram0["bd_stat"] == {"bd_count": 5, "bd_reads": 6, "bd_writes": 7}
    else:
        assert zram0["bd_stat"].startswith("unavailable: /sys/block/zram0/bd_stat: ")
        assert "CONFIG_ZRAM_WRITEBACK" in zram0["bd_stat"]
    selected = next(word for word in kernel["comp_algorithm"].split() if word[0] == "[")
    assert zram0["comp_algorithm"] == {
        "selected": selected.strip("[]"),
        "offered": [word.strip("[]") for word in kernel["comp_algorithm"].split()]}


def test_unreadable_debugfs_is_one_line(tmp_path, monkeypatch):
    """debugfs's root is 0700: a user who is not root gets EACCES listing it.
    (The tests may run as root, whom no mode stops, so the refusal is raised
    where the kernel would raise it.)"""
    root = fake_tree(tmp_path, "6.12")
    listdir = os.listdir
    debugfs = str(root / "sys/kernel/debug/zswap")

    def listdir_as_user(path):
        if os.fspath(path) == debugfs:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return listdir(path)
    monkeypatch.setattr(os, "listdir", listdir_as_user)
    report = host.read_host(root)
    assert report["zswap_debugfs"] == (
        "unavailable: /sys/kernel/debug/zswap: permission denied (debugfs not mounted or not "
        "readable, or zswap not enabled since boot: it sets up on first enabling)")
    assert report["zswap_parameters"]["compressor"] == "lz4"


def test_one_unreadable_counter_leaves_the_others(tmp_path):
    root = fake_tree(tmp_path, "6.1")
    counter = root / "sys/kernel/debug/zswap/stored_pages"
    counter.unlink()
    counter.mkdir()                     # reading it fails with EISDIR
    debugfs = host.read_host(root)["zswap_debugfs"]
    assert debugfs["stored_pages"] == ("unavailable: /sys/kernel/debug/zswap/stored_pages: "
                                       "is a directory")
    assert debugfs["pool_total_size"] == 4620288


def test_no_zswap_module_and_no_zram_devices(tmp_path):
    root = fake_tree(tmp_path, "6.18")
    for directory in ("sys/module/zswap/parameters", "sys/kernel/debug/zswap",
                      "sys/block/zram0"):
        for path in (root / directory).iterdir():
            path.unlink()
        (root / directory).rmdir()
    report = host.read_host(root)
    assert report["zswap_parameters"] == ("unavailable: /sys/module/zswap/parameters: no such "
                                          "file or directory (no zswap in this kernel)")
    assert report["zswap_debugfs"].startswith("unavailable: /sys/kernel/debug/zswap: no such")
    assert report["zram"] == "unavailable: no /sys/block/zram* devices (zram not loaded)"
    assert report["vmstat"]["zswpout"] == 1909


def test_an_empty_tree_is_all_unavailable_and_the_command_still_runs(tmp_path):
    report = host.read_host(tmp_path)
    assert report["release"].startswith("unavailable: /proc/sys/kernel/osrelease: ")
    for section in ("zswap_parameters", "zswap_debugfs", "vmstat", "zram"):
        assert report[section].startswith("unavailable: "), section
    assert report["profiles"]["zram"]["kernel"] is None
    cli.main(["host", "--root", str(tmp_path)])         # prints, raises nothing


def test_host_command_marks_what_zswapsim_does_not_model(tmp_path, capsys):
    root = fake_tree(tmp_path, "6.12")
    # a counter of later kernels (2025, KERNEL.md 1.4) that no profile has
    write(root / "sys/kernel/debug/zswap/crypto_compress_fail", "0\n")
    cli.main(["host", "--root", str(root)])
    lines = capsys.readouterr().out.splitlines()
    assert "kernel 6.12.117+deb12-amd64" in lines
    # the 6.12 profile models every debugfs file 6.12 has
    assert any(line.split() == ["reject_compress_fail", "302"] for line in lines)
    assert [line.split()[0] for line in lines if line.endswith("(not modelled)")] == \
        ["crypto_compress_fail"]
    assert any(line.split() == ["stored_pages", "1606"] for line in lines)
    assert any(line.split() == ["huge_pages", "318"] for line in lines)
    cli.main(["host", "--root", str(root), "--json"])
    assert json.loads(capsys.readouterr().out) == host.read_host(root)


@pytest.mark.parametrize("model, release, expected", [
    ("zswap", "6.1.0-56-amd64", ("6.1", None)),
    ("zswap", "6.2.16", ("6.1", "no 6.2 profile: 6.1 is the nearest below")),
    ("zswap", "6.3.0", ("6.3", None)),
    ("zswap", "6.18.44-fc-v1098", ("6.18", None)),
    ("zswap", "7.2.1-fc-v1098", ("6.18", "newer than every modelled zswap kernel: "
                                        "6.18 is the newest")),
    ("zswap", "6.9.12", ("6.6", "no 6.9 profile: 6.6 is the nearest below")),
    ("zswap", "5.15.0-91-generic", ("3.11", "no 5.15 profile: 3.11 is the nearest below")),
    ("zswap", "3.10.0-1160.el7", (None, "older than every modelled zswap kernel "
                                        "(the oldest is 3.11)")),
    ("zram", "4.19.0", ("4.14", "no 4.19 profile: 4.14 is the nearest below")),
    ("zram", "6.6.30", ("6.6", None)),
    ("zram", "6.5.0", ("6.1", "no 6.5 profile: 6.1 is the nearest below")),
    ("zram", "4.9.337", (None, "older than every modelled zram kernel (the oldest is 4.14)")),
])
def test_pick_kernel_takes_the_newest_modelled_at_or_below(model, release, expected):
    assert host.pick_kernel(model, release) == expected


def test_pick_kernel_refuses_a_non_release():
    with pytest.raises(ConfigError, match="not a kernel release"):
        host.pick_kernel("zram", "linux")


def test_host_kernel_resolves_and_refuses(tmp_path):
    write(tmp_path / "proc/sys/kernel/osrelease", "6.12.117+deb12-amd64\n")
    assert host.host_kernel("zram", tmp_path) == "6.12"
    write(tmp_path / "proc/sys/kernel/osrelease", "3.10.0\n")
    with pytest.raises(ConfigError, match="--kernel host: kernel 3.10.0 is older"):
        host.host_kernel("zswap", tmp_path)


# -- kernel-check --------------------------------------------------------

def pages_three():
    """A zero page, an 8-byte word repeated, and random bytes."""
    return [bytes(PAGE), b"\x01\x02\x03\x04\x05\x06\x07\x08" * (PAGE // 8),
            random.Random(1).randbytes(PAGE)]


def zram_tree(root, comp_algorithm="lzo [lzo-rle] lz4", release="6.6.30", index=1,
              mm_stat="12288 4000 8192 0 8192 2 0 1 1"):
    """zram-control whose hot_add hands out `index`, a device of someone
    else's (zram0) that must stay untouched, and ours with mm_stat fixed."""
    write(root / "proc/sys/kernel/osrelease", release + "\n")
    write(root / "sys/class/zram-control/hot_add", f"{index}\n")
    write(root / "sys/class/zram-control/hot_remove", "")
    write(root / "sys/block/zram0/disksize", "1073741824\n")
    write(root / "sys/block/zram0/comp_algorithm", "[lzo-rle] lzo lz4\n")
    ours = root / f"sys/block/zram{index}"
    write(ours / "comp_algorithm", comp_algorithm + "\n")
    write(ours / "disksize", "0\n")
    write(ours / "mm_stat", mm_stat + "\n")
    write(root / "dev" / f"zram{index}", "")
    write(root / "dev/zram0", "someone else's data")
    return root


def snapshot(root, names=("sys/block/zram0/disksize", "sys/block/zram0/comp_algorithm",
                          "dev/zram0")):
    return {name: (root / name).read_bytes() for name in names}


def raw_dump(tmp_path, pages):
    path = tmp_path / "three.raw"
    path.write_bytes(b"".join(pages))
    return path


# The fake kernel's mm_stat after each of pages_three()'s writes: the zero
# and the repeated-word page are same_pages; the random page is stored as
# a 4096-byte huge object, alone in a one-page zspage.
STORED_HUGE = ("4096 0 0 0 0 1 0 0 0", "8192 0 0 0 0 2 0 0 0",
               "12288 4096 4096 0 4096 2 0 1 1")
# Another kernel whose compressor got the random page into 3000 bytes: below
# 6.6's huge_class_size (3625), so it goes to zsmalloc's class for 3000
# bytes.  That class (3008 rounded up through the merged classes to 3072)
# has zspages of 3 pages holding 4 objects: 12288 / 3072 = 4, and 3 pages
# is the first chain length (of 1..8) wasting the least: 12288 % 3008 = 256.
STORED_3000 = ("4096 0 0 0 0 1 0 0 0", "8192 0 0 0 0 2 0 0 0",
               "12288 3000 12288 0 12288 2 0 0 0")


def fake_kernel(monkeypatch, root, lines, index=1):
    """The kernel's side of the writes: once write i lands, mm_stat reads lines[i]."""
    write_pages = host._write_pages
    mm_stat = root / f"sys/block/zram{index}/mm_stat"

    def writes_that_update_mm_stat(node, pages, after_each):
        def landed(i):
            mm_stat.write_text(lines[i] + "\n")
            after_each(i)
        write_pages(node, pages, landed)
    monkeypatch.setattr(host, "_write_pages", writes_that_update_mm_stat)


def by_mode(result):
    return {(row["mode"], row["field"]): (row["simulated"], row["kernel"], row["difference"],
                                          row["percent"]) for row in result["rows"]}


def test_kernel_check_writes_pages_and_compares_mm_stat(tmp_path, monkeypatch):
    root = zram_tree(tmp_path / "root")
    before = snapshot(root)
    pages = pages_three()
    fake_kernel(monkeypatch, root, STORED_HUGE)
    result = host.kernel_check(raw_dump(tmp_path, pages), compressor="lz4", root=root,
                               dev=root / "dev", euid=0)
    # The device got the compressor, then (3 + 256) pages of disksize, then
    # each page at its own offset; it was removed; zram0 was not touched.
    assert (root / "sys/block/zram1/comp_algorithm").read_text() == "lz4"
    assert (root / "sys/block/zram1/disksize").read_text() == str(259 * PAGE)
    assert (root / "dev/zram1").read_bytes() == b"".join(pages)
    assert (root / "sys/class/zram-control/hot_remove").read_text() == "1"
    assert snapshot(root) == before
    assert (result["device"], result["profile"], result["note"], result["disksize"]) == \
        ("zram1", "6.6", None, 259 * PAGE)
    assert result["modes"] == ["kernel sizes", "ours"]
    # Both modes store what the kernel stored: our lz4 also makes more than
    # 3625 bytes of the random page, so it is huge in the model too.
    kernel = dict(zip(MM_STAT_ORDER, (12288, 4096, 4096, 0, 4096, 2, 0, 1, 1)))
    assert result["mm_stat"] == kernel
    assert by_mode(result) == {(mode, field): (value, value, 0, 0.0)
                               for mode in ("kernel sizes", "ours")
                               for field, value in kernel.items()}


def test_kernel_check_feeds_the_model_the_kernels_own_lengths(tmp_path, monkeypatch):
    root = zram_tree(tmp_path / "root")
    fake_kernel(monkeypatch, root, STORED_3000)
    result = host.kernel_check(raw_dump(tmp_path, pages_three()), compressor="lz4", root=root,
                               dev=root / "dev", euid=0)
    rows = by_mode(result)
    kernel = dict(zip(MM_STAT_ORDER, (12288, 3000, 12288, 0, 12288, 2, 0, 0, 0)))
    for field, value in kernel.items():
        assert rows["kernel sizes", field] == (value, value, 0, 0.0), field
    # Ours stores the random page huge: 4096 bytes in one page.
    assert rows["ours", "compr_data_size"] == (4096, 3000, 1096, pytest.approx(109600 / 3000))
    assert rows["ours", "mem_used_total"] == (4096, 12288, -8192, pytest.approx(-200 / 3))
    assert rows["ours", "huge_pages"] == (1, 0, 1, 0.0)


def test_kernel_check_default_compressor_is_lzo_rle_then_the_kernels(tmp_path, monkeypatch):
    pages = raw_dump(tmp_path, pages_three())
    root = zram_tree(tmp_path / "a")
    fake_kernel(monkeypatch, root, STORED_HUGE)
    result = host.kernel_check(pages, root=root, dev=root / "dev", euid=0)
    assert result["compressor"] == "lzo-rle"
    assert result["modes"] == ["kernel sizes", "ours"]   # zswapsim's lzo-rle is the kernel's
    assert {row["mode"] for row in result["rows"]} == {"kernel sizes", "ours"}
    root = zram_tree(tmp_path / "b", comp_algorithm="[lz4] zstd deflate")
    fake_kernel(monkeypatch, root, STORED_HUGE)
    assert host.kernel_check(pages, root=root, dev=root / "dev", euid=0)["compressor"] == "lz4"


def test_a_kernel_older_than_every_model_gets_no_rows(tmp_path, monkeypatch):
    root = zram_tree(tmp_path / "root", release="4.9.337")
    fake_kernel(monkeypatch, root, STORED_HUGE)
    result = host.kernel_check(raw_dump(tmp_path, pages_three()), compressor="lz4", root=root,
                               dev=root / "dev", euid=0)
    assert (result["profile"], result["rows"], result["modes"]) == (None, [], [])
    assert result["mm_stat"]["huge_pages"] == 1


def test_kernel_check_reads_a_traces_stored_pages(tmp_path, monkeypatch):
    first, second, third = pages_three()
    trace = tmp_path / "t.trace"
    with TraceWriter(str(trace)) as writer:
        writer.store(0, 7, second)
        writer.store(0, 2, third)
        writer.load(0, 7)
        writer.store(0, 7, first)
    assert host.load_pages(trace) == [second, third, first]
    root = zram_tree(tmp_path / "root")
    fake_kernel(monkeypatch, root, STORED_HUGE)
    host.kernel_check(trace, compressor="lz4", root=root, dev=root / "dev", euid=0)
    assert (root / "dev/zram1").read_bytes() == second + third + first


def test_kernel_check_refuses_without_root(tmp_path):
    root = zram_tree(tmp_path / "root")
    with pytest.raises(host.Refused, match="needs root"):
        host.kernel_check(raw_dump(tmp_path, pages_three()), root=root, dev=root / "dev",
                          euid=1000)
    assert (root / "sys/class/zram-control/hot_add").read_text() == "1\n"
    assert (root / "sys/class/zram-control/hot_remove").read_text() == ""


def test_kernel_check_refuses_without_the_zram_module(tmp_path):
    with pytest.raises(host.Refused, match="no zram module: /sys/class/zram-control/hot_add"):
        host.kernel_check(raw_dump(tmp_path, pages_three()), root=tmp_path, euid=0)


def test_kernel_check_refuses_when_no_device_can_be_added(tmp_path):
    root = zram_tree(tmp_path / "root")
    (root / "sys/class/zram-control/hot_add").write_text("")
    with pytest.raises(host.Refused, match="no free zram device could be added"):
        host.kernel_check(raw_dump(tmp_path, pages_three()), root=root, euid=0)
    hot_add = root / "sys/class/zram-control/hot_add"
    hot_add.unlink()
    hot_add.mkdir()                     # reading fails, as an -ENOMEM hot_add would
    with pytest.raises(host.Refused, match="no free zram device could be added"):
        host.kernel_check(raw_dump(tmp_path, pages_three()), root=root, euid=0)
    assert (root / "sys/class/zram-control/hot_remove").read_text() == ""


def test_a_compressor_the_kernel_lacks_is_refused_and_the_device_removed(tmp_path):
    root = zram_tree(tmp_path / "root", index=3)
    with pytest.raises(ConfigError, match="no compressor 'zstd'; it offers: lzo, lzo-rle, lz4"):
        host.kernel_check(raw_dump(tmp_path, pages_three()), compressor="zstd", root=root,
                          dev=root / "dev", euid=0)
    assert (root / "sys/class/zram-control/hot_remove").read_text() == "3"
    assert (root / "dev/zram3").read_bytes() == b""


def test_a_failed_write_still_removes_the_device(tmp_path, monkeypatch):
    root = zram_tree(tmp_path / "root")
    (root / "dev/zram1").unlink()       # the node never appears
    monkeypatch.setattr(host, "DEVICE_NODE_WAIT_S", 0.0)
    with pytest.raises(FileNotFoundError):
        host.kernel_check(raw_dump(tmp_path, pages_three()), compressor="lz4", root=root,
                          dev=root / "dev", euid=0)
    assert (root / "sys/class/zram-control/hot_remove").read_text() == "1"


def test_sigterm_during_the_writes_removes_the_device(tmp_path, monkeypatch):
    root = zram_tree(tmp_path / "root")
    write_pages = host._write_pages

    def write_then_terminated(node, pages, after_each):
        write_pages(node, pages[:1], after_each)
        os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(host, "_write_pages", write_then_terminated)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        host.kernel_check(raw_dump(tmp_path, pages_three()), compressor="lz4", root=root,
                          dev=root / "dev", euid=0)
    assert (root / "sys/class/zram-control/hot_remove").read_text() == "1"
    assert signal.getsignal(signal.SIGTERM) is handler


def test_sigterm_while_the_device_is_added_still_removes_it(tmp_path, monkeypatch):
    """The signal is held until hot_add's index is known, then stops the run."""
    root = zram_tree(tmp_path / "root")
    hot_add = host._hot_add

    def hot_add_then_terminated(root):
        index = hot_add(root)
        os.kill(os.getpid(), signal.SIGTERM)
        return index
    monkeypatch.setattr(host, "_hot_add", hot_add_then_terminated)
    with pytest.raises(KeyboardInterrupt):
        host.kernel_check(raw_dump(tmp_path, pages_three()), compressor="lz4", root=root,
                          dev=root / "dev", euid=0)
    assert (root / "sys/class/zram-control/hot_remove").read_text() == "1"
    assert (root / "dev/zram1").read_bytes() == b""


def one_line_error(capsys, argv, status=2):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == status
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zswapsim: error: "), lines
    return lines[0]


def test_kernel_check_command_refusals_are_one_line(tmp_path, monkeypatch, capsys):
    pages = str(raw_dump(tmp_path, pages_three()))
    root = zram_tree(tmp_path / "root")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in one_line_error(
        capsys, ["kernel-check", pages, "--root", str(root), "--dev", str(root / "dev")])
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert "no zram module" in one_line_error(
        capsys, ["kernel-check", pages, "--root", str(tmp_path / "empty")])
    assert "no compressor 'zstd'" in one_line_error(
        capsys, ["kernel-check", pages, "--compressor", "zstd", "--root", str(root),
                 "--dev", str(root / "dev")])
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    assert "no pages to write" in one_line_error(
        capsys, ["kernel-check", str(empty), "--root", str(root), "--dev", str(root / "dev")])


def test_kernel_check_command_prints_rows(tmp_path, monkeypatch, capsys):
    pages = str(raw_dump(tmp_path, pages_three()))
    root = zram_tree(tmp_path / "root")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fake_kernel(monkeypatch, root, STORED_3000)
    cli.main(["kernel-check", pages, "--compressor", "lz4", "--root", str(root),
              "--dev", str(root / "dev")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"{pages}: 3 pages written to zram1 (removed again), compressor lz4, "
                        "kernel 6.6.30, profile 6.6")
    assert lines[2].split() == ["mode", "field", "simulated", "kernel", "difference",
                                "percent"]
    assert lines[3].split() == ["kernel", "sizes", "orig_data_size", "12288", "12288", "0",
                                "0.000"]
    assert lines[13].split() == ["ours", "compr_data_size", "4096", "3000", "1096", "36.533"]
    assert lines[-1] == ("9 of 9 values computed from the kernel's own compressed sizes "
                         "equal the kernel's")


def test_kernel_check_command_exits_1_when_the_kernels_sizes_disagree(tmp_path, monkeypatch,
                                                                      capsys):
    """A kernel that reports a 3000-byte object in one page: not what the
    6.6 zsmalloc model does with it, so the check says so and fails."""
    root = zram_tree(tmp_path / "root")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fake_kernel(monkeypatch, root, STORED_3000[:2] + ("12288 3000 4096 0 4096 2 0 0 0",))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["kernel-check", str(raw_dump(tmp_path, pages_three())), "--compressor",
                  "lz4", "--root", str(root), "--dev", str(root / "dev")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("7 of 9 values")
