"""The fidelity loader against hostile folders, and a folder run on a page set
worked out by hand.

The hand set has two pages: a zero page and 4096 random bytes.  On Linux 6.1
zram (lz4, 8192-byte buffer) the zero page is same-filled (0 bytes stored)
and the random page compresses to more than huge_class_size 3257, so it is
stored whole: orig_data_size 2 * 4096, compr_data_size 4096, same_pages 1,
huge_pages 1, and zsmalloc's 4096-byte class takes one page for it
(mem_used_total 4096).  zswap 6.1 (zbud, lz4, 4096-byte buffer) stores the
zero page as same-filled (stored_pages 1, same_filled_pages 1) and the
random page does not fit its buffer, so it goes to swap uncounted by any
reject counter: pool_total_size 0, reject_compress_poor 0.

The zstd bombs are built by hand from RFC 8878: a frame of RLE blocks, each
4 bytes long and 128 KiB decompressed.
"""

import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import time
import tracemalloc

import pytest
import zstandard

from zswapsim import fidelity
from zswapsim.cli import main
from zswapsim.errors import FidelityError, UserError
from zswapsim.fidelity import (MAX_KERNEL_JSON, load_set, read_kernel_json, read_pages,
                               run_fidelity)

PAGES = [bytes(4096), random.Random(14).randbytes(4096)]
KERNEL_61 = "6.1.0-56-amd64"
ZRAM_LZ4 = {"disksize": (2 + 256) * 4096, "orig_data_size": 8192, "compr_data_size": 4096,
            "mem_used_total": 4096, "same_pages": 1, "huge_pages": 1,
            "per_page_compr_size": [0, 4096]}
ZSWAP_ZBUD_LZ4 = {"mem_total_kb": 1 << 20, "max_pool_percent": 50, "stored_pages": 1,
                  "same_filled_pages": 1, "pool_total_size": 0, "reject_compress_poor": 0}


def hand_set(kernel=KERNEL_61):
    return {"set": "hand", "pages_file": "hand.pages.zst", "npages": 2, "page_size": 4096,
            "pages_sha256": hashlib.sha256(b"".join(PAGES)).hexdigest(), "kernel": kernel,
            "zram": {"lz4": dict(ZRAM_LZ4)}, "zswap": {"zbud": {"lz4": dict(ZSWAP_ZBUD_LZ4)}},
            # the zero page's length is never used (same-filled); the random page did not fit
            "kernel_lz4_len": {"max_out_4096": [16, 0]}}


def write_folder(folder, kernel_json, pages=b"".join(PAGES), name="hand.kernel.json"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hand.pages.zst").write_bytes(zstandard.ZstdCompressor().compress(pages))
    data = kernel_json if isinstance(kernel_json, bytes) else json.dumps(kernel_json).encode()
    if name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    (folder / name).write_bytes(data)
    return folder / name


def rle_bomb(blocks, byte=0):
    """A zstd frame of `blocks` RLE blocks of 128 KiB each (RFC 8878 3.1.1):
    magic, a frame header with no content size and a 128 KiB window
    (Window_Descriptor exponent 7: 2^(10+7)), then 3-byte block headers
    (Last_Block bit 0, Block_Type 1 = RLE in bits 1-2, Block_Size in bits 3-23)
    each followed by the one byte repeated."""
    def block(last):
        return struct.pack("<I", last | 1 << 1 | (128 << 10) << 3)[:3] + bytes([byte])
    return b"\x28\xb5\x2f\xfd" + b"\x00" + bytes([7 << 3]) + \
        block(0) * (blocks - 1) + block(1)


@pytest.fixture
def cli(capsys):
    """Run the command line in this process through its entry point, main()
    (test_bomb_through_python_m runs `python -m zswapsim` itself)."""
    def run(*args):
        try:
            main(list(args))
            status = 0
        except SystemExit as exc:
            status = exc.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out, err)
    return run


def assert_one_line(result, fragment):
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("zswapsim: error: "), result.stderr
    assert fragment in lines[0], lines[0]


# -- the hand set: read both ways, run, skipped and percent ------------------

def test_rle_bomb_is_what_it_claims():
    """The hand-built frame is valid zstd: 3 blocks give 3 * 128 KiB of 0x41."""
    reader = zstandard.ZstdDecompressor().stream_reader(rle_bomb(3, 0x41))
    assert reader.read() == b"A" * (3 * 128 * 1024)


@pytest.mark.parametrize("name", ["hand.kernel.json", "hand.kernel.json.zst"])
def test_json_and_zstd_json_load_alike(tmp_path, name):
    kernel, pages = load_set(write_folder(tmp_path, hand_set(), name=name))
    assert kernel == hand_set() and pages == PAGES


def test_hand_set_runs_exactly_and_other_kernels_are_skipped(tmp_path):
    write_folder(tmp_path, hand_set())
    write_folder(tmp_path / "linux-5.15", hand_set("5.15.0-91-generic") |
                 {"pages_file": "../hand.pages.zst"}, name="hand.kernel.json.zst")
    rows, skipped = run_fidelity(tmp_path)
    assert skipped == [{"set": "linux-5.15/hand", "kernel": "5.15.0-91-generic",
                        "case": "zram lz4", "reason": "no 5.15 zram profile yet"},
                       {"set": "linux-5.15/hand", "kernel": "5.15.0-91-generic",
                        "case": "zswap zbud/lz4", "reason": "no 5.15 zswap profile yet"}]
    assert {row["set"] for row in rows} == {"hand"}
    # 5 zram fields and 4 zswap fields, each on the kernel's sizes and on ours
    assert len(rows) == 18 and [row for row in rows if row["difference"]] == []
    assert all(row["percent"] == 0.0 for row in rows)


def test_percent_of_a_kernel_zero_is_none_and_a_dash(tmp_path, cli):
    kernel = hand_set()
    kernel["zram"]["lz4"]["huge_pages"] = 0              # a kernel we disagree with
    write_folder(tmp_path, kernel)
    rows, _ = run_fidelity(tmp_path)
    huge = [row for row in rows if row["field"] == "huge_pages"]
    assert [(row["simulated"], row["kernel"], row["percent"]) for row in huge] == \
        [(1, 0, None), (1, 0, None)]
    result = cli("fidelity", str(tmp_path), "--json")
    assert result.returncode == 1
    assert [row["percent"] for row in json.loads(result.stdout)
            if row["field"] == "huge_pages"] == [None, None]
    result = cli("fidelity", str(tmp_path))
    assert result.returncode == 1
    huge_lines = [line.split() for line in result.stdout.splitlines() if "huge_pages" in line]
    assert [line[-4:] for line in huge_lines] == [["1", "0", "1", "-"]] * 2


def test_cli_lists_skipped_sets(tmp_path, cli):
    write_folder(tmp_path, hand_set())
    write_folder(tmp_path / "linux-5.15", hand_set("5.15.0-91-generic") |
                 {"pages_file": "../hand.pages.zst"})
    result = cli("fidelity", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "skipped linux-5.15/hand zswap zbud/lz4 (kernel 5.15.0-91-generic): no 5.15 " \
        "zswap profile yet" in result.stdout.splitlines()
    assert "9 of 9 values computed from the kernel's own compressed sizes" in result.stdout
    result = cli("fidelity", str(tmp_path), "--json")
    assert result.returncode == 0
    assert {row["set"] for row in json.loads(result.stdout)} == {"hand"}
    assert "skipped linux-5.15/hand zram lz4" in result.stderr


# -- hostile page files ------------------------------------------------------

def test_zstd_bomb_page_file_is_refused_quickly_in_little_memory(tmp_path):
    bomb = tmp_path / "bomb.pages.zst"
    bomb.write_bytes(rle_bomb(8192))                     # 32 KiB that expand to 1 GiB
    assert bomb.stat().st_size < 40_000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(FidelityError, match=r"decompresses to more than 8,192 bytes"):
            read_pages(bomb, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20                                # held at most ~8 KiB of pages
    assert time.perf_counter() - start < 5


def test_zstd_bomb_kernel_json_stops_at_its_cap(tmp_path):
    path = tmp_path / "bomb.kernel.json.zst"
    path.write_bytes(rle_bomb(MAX_KERNEL_JSON // (128 << 10) + 1, ord(" ")))
    with pytest.raises(FidelityError, match=r"decompresses to more than 67,108,864 bytes"):
        read_kernel_json(path)


def test_bomb_through_python_m(tmp_path):
    write_folder(tmp_path, hand_set())
    (tmp_path / "hand.pages.zst").write_bytes(rle_bomb(8192))
    result = subprocess.run([sys.executable, "-m", "zswapsim", "fidelity", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert_one_line(result, "decompresses to more than 8,192 bytes")


def test_bad_sha256_is_refused(tmp_path, cli):
    kernel = hand_set() | {"pages_sha256": hashlib.sha256(b"other").hexdigest()}
    path = write_folder(tmp_path, kernel)
    actual = hashlib.sha256(b"".join(PAGES)).hexdigest()
    with pytest.raises(FidelityError, match=f"SHA-256 is {actual}, not the pages_sha256 "
                                            f"{kernel['pages_sha256']}"):
        load_set(path)
    assert_one_line(cli("fidelity", str(tmp_path)), "not the pages_sha256")


def test_truncated_page_file_is_refused(tmp_path, cli):
    path = write_folder(tmp_path, hand_set())
    whole = (tmp_path / "hand.pages.zst").read_bytes()
    (tmp_path / "hand.pages.zst").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(FidelityError, match=r"holds \d[\d,]* bytes, not the 8,192 of 2 pages "
                                            r"\(truncated"):
        load_set(path)
    assert_one_line(cli("fidelity", str(tmp_path)), "truncated")


def test_page_file_with_fewer_or_more_pages_is_refused(tmp_path):
    path = write_folder(tmp_path, hand_set(), pages=PAGES[0])
    with pytest.raises(FidelityError, match="holds 4,096 bytes, not the 8,192 of 2 pages"):
        load_set(path)
    path = write_folder(tmp_path, hand_set(), pages=b"".join(PAGES) + bytes(1))
    with pytest.raises(FidelityError, match="decompresses to more than 8,192 bytes"):
        load_set(path)


def test_page_file_that_is_not_zstd_or_missing(tmp_path):
    path = write_folder(tmp_path, hand_set())
    (tmp_path / "hand.pages.zst").write_bytes(b"garbage, not a zstd frame" * 10)
    with pytest.raises(FidelityError, match="not a valid zstd file"):
        load_set(path)
    (tmp_path / "hand.pages.zst").unlink()
    with pytest.raises(FidelityError, match="hand.pages.zst: cannot read it"):
        load_set(path)


# -- hostile JSON ------------------------------------------------------------

def without_disksize():
    kernel = hand_set()
    del kernel["zram"]["lz4"]["disksize"]
    return kernel


BAD_JSON = [
    (without_disksize(), "no zram.lz4.disksize"),
    (hand_set() | {"zram": {"lz4": ZRAM_LZ4 | {"disksize": "1073741824"}}},
     "zram.lz4.disksize is a string, not an integer"),
    (hand_set() | {"zram": {"lz4": ZRAM_LZ4 | {"disksize": True}}},
     "zram.lz4.disksize is true/false, not an integer"),
    (hand_set() | {"zram": {"lz4": ZRAM_LZ4 | {"disksize": 4096}}},
     "zram.lz4.disksize is 4096, not >= 8192"),
    ([hand_set()], "the JSON is a list, not an object"),
    ("a string", "the JSON is a string, not an object"),
    (7, "the JSON is an integer, not an object"),
    (hand_set() | {"zram": []}, "zram is a list, not an object"),
    (hand_set() | {"zswap": {"zbud": {"lz4": 5}}}, "zswap.zbud.lz4 is an integer, not an object"),
    (hand_set() | {"zswap": {"zbud": {"lz4": ZSWAP_ZBUD_LZ4 | {"max_pool_percent": 101}}}},
     "zswap.zbud.lz4.max_pool_percent is 101, not 0..100"),
    (hand_set() | {"zswap": {"zbuddy": {"lz4": ZSWAP_ZBUD_LZ4}}}, "zswap.zbuddy: unknown pool"),
    (hand_set() | {"npages": 1 << 18 | 1}, "npages is 262145, not 1..262144"),
    (hand_set() | {"npages": 0}, "npages is 0, not 1..262144"),
    (hand_set() | {"page_size": 16384}, "page_size is 16384; zswapsim models 4096-byte pages"),
    (hand_set() | {"pages_sha256": "xyz"}, "pages_sha256 'xyz' is not 64 hex digits"),
    ({k: v for k, v in hand_set().items() if k != "kernel"}, "no kernel"),
    (hand_set() | {"kernel": "\x1b[2J6.1"}, r"kernel '\x1b[2J6.1' is not a release"),
    (hand_set() | {"zram": {"lz4": ZRAM_LZ4 | {"per_page_compr_size": [0]}}},
     "zram.lz4.per_page_compr_size has 1 entries, not npages 2"),
    (hand_set() | {"kernel_lz4_len": {"max_out_4096": [16, 4097]}},
     "kernel_lz4_len.max_out_4096[1] is 4097, not a length in 0..4096"),
]


@pytest.mark.parametrize("kernel, message", BAD_JSON, ids=[m for _, m in BAD_JSON])
def test_bad_kernel_json_is_one_clear_line(tmp_path, kernel, message, cli):
    write_folder(tmp_path, kernel)
    with pytest.raises(FidelityError) as caught:
        run_fidelity(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'hand.kernel.json'}: ")
    assert message in str(caught.value) and isinstance(caught.value, UserError)
    assert_one_line(cli("fidelity", str(tmp_path)), message)


@pytest.mark.parametrize("data, message", [
    (b'{"npages": 2, ', "not valid JSON"),
    (b"\xff\xfe not text", "not valid JSON"),
    (b"[" * 100_000, "not valid JSON"),                  # too deep for the parser
])
def test_unparsable_json_is_one_clear_line(tmp_path, data, message, cli):
    write_folder(tmp_path, data)
    with pytest.raises(FidelityError, match=message):
        run_fidelity(tmp_path)
    assert_one_line(cli("fidelity", str(tmp_path)), message)


def test_truncated_zstd_json_is_refused(tmp_path, cli):
    path = write_folder(tmp_path, hand_set(), name="hand.kernel.json.zst")
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) - 8])
    with pytest.raises(FidelityError, match="not valid JSON"):
        read_kernel_json(path)
    assert_one_line(cli("fidelity", str(tmp_path)), "not valid JSON")


def test_a_set_twice_and_an_empty_folder(tmp_path, cli):
    write_folder(tmp_path, hand_set())
    write_folder(tmp_path, hand_set(), name="hand.kernel.json.zst")
    assert_one_line(cli("fidelity", str(tmp_path)), "hand is there twice")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line(cli("fidelity", str(empty)), "no *.kernel.json or *.kernel.json.zst files")


@pytest.mark.parametrize("second, message", [
    (without_disksize(), "zz.kernel.json: no zram.lz4.disksize"),
    (hand_set() | {"pages_sha256": "0" * 64}, "not the pages_sha256 " + "0" * 64),
])
def test_problems_are_found_before_any_case_runs(tmp_path, monkeypatch, second, message):
    """A bad second set stops the run before the first set's cases run."""
    write_folder(tmp_path, hand_set())
    write_folder(tmp_path, second, name="zz.kernel.json")
    monkeypatch.setattr(fidelity, "zram_class",
                        lambda *args, **kwargs: lambda *a, **k: pytest.fail("a case ran"))
    with pytest.raises(FidelityError, match=message):
        run_fidelity(tmp_path)


def test_fifo_or_device_is_refused_without_reading(tmp_path, cli):
    """/dev/zero would never end and a FIFO without a writer never opens."""
    os.mkfifo(tmp_path / "fifo.pages.zst")
    for pages_file in ("/dev/zero", str(tmp_path / "fifo.pages.zst")):
        write_folder(tmp_path, hand_set() | {"pages_file": pages_file})
        assert_one_line(cli("fidelity", str(tmp_path)), f"{pages_file}: not a regular file")
    (tmp_path / "hand.kernel.json").unlink()
    os.mkfifo(tmp_path / "hand.kernel.json")
    assert_one_line(cli("fidelity", str(tmp_path)), "hand.kernel.json: not a regular file")
