"""What a trace, a recording or an option may make zswapsim spend, and how
it says no: the reader's bound on page images (--max-trace-memory), blocks
held once, a recording handed where a trace belongs, the writer's memory
per event, descriptions (length, terminal escapes), a mix whose weights
overflow, and inputs that never end.

Traces are built byte by byte with struct, so every size and byte offset
expected below follows from the format's layout (docs/trace-format.md):
a header of 20 bytes + the description + a 4-byte CRC, then blocks of a
24-byte header and their payload, then a 24-byte trailer.
"""

import os
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib

import numpy as np
import pytest
import zstandard

from zswapsim.cli import main
from zswapsim.errors import ConfigError, TraceError
from zswapsim.trace import LOAD, NO_IMAGE, STORE, TraceReader, TraceWriter
from zswapsim.trace import format as trace_format
from zswapsim.trace.recording import RecordingWriter
from zswapsim.trace.synth import check_mix

PAGE = 4096
HEADER_BYTES = 20 + 4           # no description


def header(description=b""):
    fixed = struct.pack("<8sHHII", b"ZSWTRACE", 1, 0, PAGE, len(description))
    return fixed + description + struct.pack("<I", zlib.crc32(fixed + description))


def event(op, image, offset):
    return struct.pack("<BBHIQQ", op, 0, 0, image, offset, 0)


def block(n_images, events, release=(), fill=0):
    """A block defining n_images pages of the byte `fill`, holding `events`
    (packed), releasing the ids in `release`."""
    raw = (bytes([fill]) * PAGE * n_images + b"".join(events)
           + struct.pack(f"<{len(release)}I", *release))
    payload = zstandard.ZstdCompressor().compress(raw)
    return struct.pack("<4sIIIII", b"ZBLK", n_images, len(events), len(release), len(payload),
                       zlib.crc32(payload)) + payload


def trailer(events, images):
    counts = struct.pack("<QQ", events, images)
    return b"ZEND" + counts + struct.pack("<I", zlib.crc32(counts))


def write(tmp_path, blocks, name="crafted.trace"):
    """A trace of `blocks` (each a (n_images, events, release) triple); returns
    its path and the byte offset of each block."""
    data, offsets, events, images = header(), [], 0, 0
    for n_images, block_events, release in blocks:
        offsets.append(len(data))
        data += block(n_images, block_events, release)
        events += len(block_events)
        images += n_images
    path = tmp_path / name
    path.write_bytes(data + trailer(events, images))
    return path, offsets


def read_all(path, **options):
    return [item for item in TraceReader(path, **options)]


def one_line_error(capsys, argv, status=2):
    """Run the CLI in this process; return its single stderr line."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == status
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("zswapsim: error: "), err
    return lines[0]


# --- the reader's bound on live page images -----------------------------------------------

def test_the_default_bound_is_two_gib(tmp_path):
    path, _ = write(tmp_path, [(1, [event(STORE, 0, 0)], [0])])
    assert trace_format.DEFAULT_MAX_MEMORY == 2 * 1024 ** 3
    assert TraceReader(path).max_memory == 2 * 1024 ** 3


def test_a_block_larger_than_the_bound_is_refused_at_its_image_count(tmp_path):
    """8 pages = 32768 bytes: a bound one byte short refuses the block at its
    n_images field (block offset + 4), before anything is decompressed."""
    path, (at,) = write(tmp_path, [(8, [event(STORE, 0, 0)], list(range(8)))])
    with pytest.raises(TraceError, match="block defines 8 images \\(32,768 bytes\\)") as caught:
        read_all(path, max_memory=8 * PAGE - 1)
    assert caught.value.offset == at + 4 == HEADER_BYTES + 4
    assert len(read_all(path, max_memory=8 * PAGE)) == 1


def test_a_live_set_growing_past_the_bound_is_refused_at_that_block(tmp_path):
    """Three blocks of 4 images, none released: 4, 8, then 12 live pages.
    A bound of 10 pages passes the first two blocks and refuses the third."""
    blocks = [(4, [event(STORE, 4 * b, b)], []) for b in range(3)]
    path, offsets = write(tmp_path, blocks)
    with pytest.raises(TraceError, match=f"needs {12 * PAGE:,} bytes .*12 live") as caught:
        read_all(path, max_memory=10 * PAGE)
    assert caught.value.offset == offsets[2]
    assert len(read_all(path, max_memory=12 * PAGE)) == 3


def test_images_released_by_a_block_still_count_while_it_may_be_in_use(tmp_path):
    """Block 0 defines and releases 4 images; block 1 defines 4 more.  While
    block 1 is decoded ahead the caller may still hold block 0's images, so
    the reader counts 4 + 4 = 8 pages; three blocks later (READ_AHEAD_BLOCKS)
    they no longer count, and 4 new images need 4 pages."""
    assert trace_format.READ_AHEAD_BLOCKS == 3
    released_then_new = [(4, [event(STORE, 0, 0)], [0, 1, 2, 3]),
                         (4, [event(STORE, 4, 0)], [4, 5, 6, 7])]
    path, offsets = write(tmp_path, released_then_new)
    with pytest.raises(TraceError, match="needs 32,768 bytes") as caught:
        read_all(path, max_memory=8 * PAGE - 1)
    assert caught.value.offset == offsets[1]
    assert len(read_all(path, max_memory=8 * PAGE)) == 2
    spaced = [released_then_new[0]] + [(0, [event(LOAD, NO_IMAGE, 9)], [])] * 3 \
        + [released_then_new[1]]
    path, _ = write(tmp_path, spaced, "spaced.trace")
    assert len(read_all(path, max_memory=4 * PAGE)) == 5


def test_the_bound_is_checked_and_the_option_reaches_every_trace_reading_command(
        tmp_path, capsys):
    with pytest.raises(ConfigError, match="at least 4096 bytes"):
        TraceReader(write(tmp_path, [])[0], max_memory=4095)
    # 20 pages live at once: 81920 bytes, more than a 64K bound.
    path, _ = write(tmp_path, [(20, [event(STORE, 0, 0)], list(range(20)))])
    for command in (["replay", "-q"], ["trace", "info"], ["zram", "-q"],
                    ["compare", "-q", "--backend", "zbud,zsmalloc"], ["tune-retries", "-q"]):
        line = one_line_error(capsys, command + [str(path), "--max-trace-memory", "64K"])
        assert "block defines 20 images (81,920 bytes)" in line
        assert "(--max-trace-memory) at byte 28" in line, line
    main(["trace", "info", str(path), "--max-trace-memory", "80K", "--json"])
    assert '"distinct_images": 20' in capsys.readouterr().out
    line = one_line_error(capsys, ["replay", str(path), "--max-trace-memory", "lots"])
    assert "cannot read size 'lots'" in line


# Peak RSS from VmHWM, the process's own high-water mark: getrusage's
# ru_maxrss would carry over the pytest process's, as it survives fork and exec.
PEAK_OF_READING = textwrap.dedent("""
    import sys
    from zswapsim.trace import TraceReader

    def peak():
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    before = peak()
    for events, images in TraceReader(sys.argv[1]).blocks():
        held = len(images)
    print(held, peak() - before)
""")


def test_a_block_of_identical_zero_images_is_held_once(tmp_path):
    """One block of 65536 zero pages compresses to about 8 KB and holds
    65536 * 4096 bytes = 256 MiB of images.  Decompressing it whole and then
    cutting images out needs twice that (the issue measured 592 MiB); the
    reader now grows by the images and little more."""
    path, _ = write(tmp_path, [(65536, [event(STORE, 0, 0)], [])])
    assert path.stat().st_size < 16 * 1024
    result = subprocess.run([sys.executable, "-c", PEAK_OF_READING, str(path)],
                            capture_output=True, text=True, timeout=120, check=True)
    held, grown = map(int, result.stdout.split())
    images = 65536 * PAGE
    assert held == 65536
    assert images <= grown < images + 48 * 1024 * 1024, grown


OUT_OF_MEMORY = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
    from zswapsim.cli import main
    main(["trace", "info", sys.argv[1], "--max-trace-memory", "64G"])
""")


def test_running_out_of_memory_while_reading_is_one_line(tmp_path):
    """16 blocks of 65536 zero pages never released need 4 GiB; under a 64G
    bound and a 1.5 GiB address space the reader runs out of memory, which
    is one line, not a MemoryError traceback: naming the block when the
    decoder is the one that runs out (exit 2), or the CLI's own "out of
    memory" (exit 1) when what is held elsewhere fills the space first
    (where depends on what else the process has mapped)."""
    blocks = [(65536, [event(STORE, 65536 * b, b)], []) for b in range(16)]
    path, _ = write(tmp_path, blocks)
    result = subprocess.run([sys.executable, "-c", OUT_OF_MEMORY, str(path), str(3 << 29)],
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    decoder = "zswapsim: error: out of memory decoding the block (65536 new page images"
    assert (result.returncode, lines[0].startswith(decoder)) in ((2, True), (1, False)), lines
    assert lines[0].startswith("zswapsim: error: out of memory"), lines


# --- a recording where a trace belongs ----------------------------------------------------

def test_a_recording_handed_to_replay_or_info_names_the_command_that_makes_a_trace(
        tmp_path, capsys):
    recording = tmp_path / "job.zrec"
    with RecordingWriter(recording, "a test program") as writer:
        writer.snapshot(0, {0x1000: bytes(PAGE), 0x2000: b"x" * PAGE})
    expected = (f"zswapsim: error: {recording} is a recording (of `zswapsim trace record`), "
                f"not a trace; make a trace of it with: zswapsim trace synth --recording "
                f"{recording} --ram SIZE -o OUTPUT.trace")
    for command in (["replay"], ["trace", "info"]):
        assert one_line_error(capsys, command + [str(recording)]).startswith(expected)
    # The command it names works (SIZE: one page of RAM).
    out = tmp_path / "job.trace"
    main(["trace", "synth", "--recording", str(recording), "--ram", "4K", "-o", str(out), "-q"])
    capsys.readouterr()
    ops = [op for op, *_ in TraceReader(out)]
    assert ops == [STORE]   # two pages written, one page of RAM: the first is swapped out


def test_a_trace_handed_to_synth_as_a_recording_says_so(tmp_path, capsys):
    path, _ = write(tmp_path, [])
    line = one_line_error(capsys, ["trace", "synth", "--recording", str(path), "--ram", "1M",
                                   "-o", str(tmp_path / "x.trace")])
    assert line == (f"zswapsim: error: {path} is a trace, not a zswapsim recording: "
                    "replay it as it is")


# --- the writer keeps no memory per event -------------------------------------------------

def test_the_writer_spools_events_instead_of_holding_them(tmp_path):
    """200000 events over 3 images and 16 slots: holding the events would
    take 200000 * 24 bytes = 4.6 MiB (more while the array doubles); the
    writer spools them and holds one buffer of WRITER_BLOCK_EVENTS."""
    pages = [bytes([tag]) * PAGE for tag in (1, 2, 3)]
    path = tmp_path / "long.trace"
    tracemalloc.start()
    try:
        with TraceWriter(path) as writer:
            for i in range(100000):
                writer.store(0, i % 16, pages[i % 3])
                writer.load(0, i % 16)
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < trace_format.WRITER_BLOCK_EVENTS * 24 + 512 * 1024, peak
    events = list(TraceReader(path))
    assert len(events) == 200000
    # Event 2i stores pages[i % 3] at i % 16; event 2i+1 loads it back.
    for i in (0, 1, 8191, 8192, 12345, 99999):
        assert events[2 * i] == (STORE, 0, i % 16, pages[i % 3], 0)
        assert events[2 * i + 1] == (LOAD, 0, i % 16, pages[i % 3], 0)


# --- descriptions ---------------------------------------------------------------------------

def test_trace_info_escapes_the_control_characters_of_a_description(tmp_path, capsys):
    hostile = "\x1b[2J\x1b[31mred\u202eevil\nsecond line\x07"
    path = tmp_path / "hostile.trace"
    with TraceWriter(path, description=hostile) as writer:
        writer.store(0, 0, bytes(PAGE))
    main(["trace", "info", str(path)])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    line = next(line for line in out.splitlines() if line.startswith("description"))
    assert line.split(None, 1)[1] == "\\x1b[2J\\x1b[31mred\\u202eevil\\nsecond line\\x07"


def test_a_description_longer_than_the_header_holds_is_refused_before_any_work(
        tmp_path, capsys):
    """The header stores up to MAX_DESCRIPTION = 65536 bytes of UTF-8."""
    assert trace_format.MAX_DESCRIPTION == 65536
    dump = tmp_path / "dump.raw"
    dump.write_bytes(bytes(PAGE))
    out = tmp_path / "out.trace"
    marker = tmp_path / "ran"
    at_limit = "é" * 32768          # 65536 bytes of UTF-8
    too_long = at_limit + "x"
    for command, rest in ((["trace", "import"], [str(dump), "-o", str(out)]),
                          (["trace", "synth"], ["--ram", "64K", "-o", str(out), "-q"]),
                          (["trace", "record"],
                           ["-o", str(out), "--", "/bin/sh", "-c", f"touch {marker}"])):
        line = one_line_error(capsys, command + ["--description", too_long] + rest)
        assert "the description is 65537 bytes, the format holds at most 65536" in line
    assert not out.exists() and not marker.exists()
    main(["trace", "import", str(dump), "-o", str(out), "--description", at_limit])
    assert TraceReader(out).description == at_limit
    with pytest.raises(ConfigError, match="65537 bytes"):
        TraceWriter(tmp_path / "api.trace", description=too_long)


def test_a_mix_whose_weights_overflow_is_one_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="add up to more than a float holds"):
        check_mix({"zero": 1e308, "text": 1e308})
    line = one_line_error(capsys, ["trace", "synth", "--ram", "64K", "-o",
                                   str(tmp_path / "x.trace"), "--mix", "zero=1e308,text=1e308"])
    assert "mix weights add up to more than a float holds" in line


# --- inputs that never end -----------------------------------------------------------------

@pytest.mark.parametrize("command", [["replay"], ["trace", "info"], ["zram"], ["compare"]])
def test_a_trace_that_is_a_fifo_or_a_device_is_refused_without_blocking(
        tmp_path, capsys, command):
    """Opening a FIFO with no writer would block forever, and a trace is
    read more than once: both are refused from the file type alone."""
    fifo = tmp_path / "trace.fifo"
    os.mkfifo(fifo)
    for source in (str(fifo), "/dev/zero"):
        line = one_line_error(capsys, command + [source])
        assert line.startswith("zswapsim: error: ") and f"{source}: is a" in line, line
        assert "not a regular file" in line, line
        with pytest.raises(TraceError, match="not a regular file; a trace must be one, as it "
                                             "is read more than once"):
            TraceReader(source)


@pytest.mark.parametrize("chunk_pages", [None, 3])
def test_reading_a_writer_made_trace_gives_back_what_was_written(
        tmp_path, monkeypatch, chunk_pages):
    """The streamed decoder against numpy's view of the same bytes: images,
    events and releases of a many-block trace come back exactly, with the
    images decompressed DECODE_CHUNK_BYTES at a time as shipped, and in
    chunks of 3 pages, so blocks of 1024 and 952 images end in a short one."""
    if chunk_pages:
        monkeypatch.setattr(trace_format, "DECODE_CHUNK_BYTES", chunk_pages * PAGE)
    rng = np.random.default_rng(5)
    pages = [rng.integers(0, 256, PAGE, dtype=np.uint8).tobytes() for _ in range(3000)]
    path = tmp_path / "many.trace"
    with TraceWriter(path) as writer:
        for i, content in enumerate(pages):
            writer.store(0, i, content)
        for i in range(0, 3000, 7):
            writer.load(0, i)
    events = list(TraceReader(path))
    assert [image for op, _, _, image, _ in events if op == STORE] == pages
    assert [image for op, _, _, image, _ in events if op == LOAD] == pages[::7]


def test_a_synth_source_that_is_a_fifo_is_refused_as_such(tmp_path, capsys):
    """Not "no such file": a FIFO exists, and is refused for what it is."""
    fifo = tmp_path / "pages.fifo"
    os.mkfifo(fifo)
    line = one_line_error(capsys, ["trace", "synth", "--ram", "64K", "-o",
                                   str(tmp_path / "x.trace"), "--source", str(fifo), "-q"])
    assert line.startswith(f"zswapsim: error: source {fifo}: is a FIFO (named pipe), not a "
                           "regular file"), line
