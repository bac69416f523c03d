"""Synthetic swap traces: a made-up program's accesses, run through RamModel.

When no recording of the workload exists, a trace can still be made from a
description of it: how many pages it touches (the footprint), which pages
it touches how often (uniform, zipf-skewed, sequential scans, or phases
that change between these), how many accesses write, and what its pages
hold.  RamModel turns the accesses into the stores, loads and invalidates a
kernel with that much RAM would make.

Page contents come from a mix of kinds, in the proportions asked for:
zero pages; same-filled pages (a byte or an 8-byte word repeated, which
zswap stores without compressing); text (words from a built-in
vocabulary); binary (64-bit words as a program's heap holds them: zeros,
small integers, pointers into a few regions, now and then a hash);
random bytes (incompressible); and pages sampled from a source, a trace's
stored images or a raw page dump.

A program initialises memory before it reads it, so the first access to
each page is a write, which gives the page its kind and first content.
Later writes keep the kind: a zero or same-filled page is filled again
whole, as memset would, and any other page gets its first content with
one run of 8 to 64 bytes overwritten by a run copied from elsewhere in it
(a field update, with bytes of the page's own kind).  Pages are not
mutated cumulatively, so a page is remembered by its kind and a seed, and
its bytes are made only when RamModel stores it: memory does not grow with
the footprint or RAM, and pages that never reach swap cost nothing.

With a rate (accesses per second) every event carries the time of the
access that made it, access i at i / rate seconds, in the trace's
nanosecond timestamps: the clock zram's idle marking and a --policy read.
Without one the trace has no timestamps (replays then count one second
per event).

Everything random comes from one random.Random(seed): the same options and
seed give the same trace, byte for byte.
"""

import math
import os
import random
import struct
from dataclasses import dataclass, replace
from functools import partial
from itertools import accumulate, cycle

from ..errors import ConfigError
from ..files import check_input
from .format import MAGIC, PAGE_SIZE, STORE, TraceReader, TraceWriter
from .importer import raw_pages
from .ram_model import ZERO_PAGE, RamModel

PATTERNS = ("uniform", "zipf", "sequential")
CONTENT_KINDS = ("zero", "same", "text", "binary", "random", "source")
DEFAULT_MIX = {"zero": 0.05, "same": 0.05, "text": 0.4, "binary": 0.3, "random": 0.2}
# Without phases or a count, a trace makes this many accesses per footprint
# page: with the default skew, well past the first touches at any RAM size.
ACCESSES_PER_PAGE = 4
# How often synthesis reports its progress, in accesses.
PROGRESS_EVERY = 4096
# A larger source is sampled down to this many pages (64 MiB) as it is read.
MAX_SOURCE_PAGES = 16384
# Pages drawn per call of the access samplers: bounds memory for long phases.
ACCESS_CHUNK = 4096

WORDS_PER_PAGE = PAGE_SIZE // 8
VOCABULARY = """
the of and to in is that for it as with was on be by this are from at or an
have not which but all were when we there can been has more if will one no
would so out up into do than its only other new some time could these two
may first then any like my now over such our man me even most made after
also did many before must through back years where much your way well down
should because each just those people how too little state good very make
world still own see men work long get here between both life being under
never day same another know while last might us great old year off come
since against go came right used take three states himself few house use
during without again place around however home small found thought went
say part once general high upon school every don't does got united left
number course war until always away something fact though water less
public put think almost hand enough far took head yet government system
better set told nothing night end why called didn't eyes find going look
asked later point knew city next program give group toward young days let
room president side social given present several order national possible
rather second face per among form important often things looking early
white case john become large big need four within felt children along
saw best church ever least power development light thing seemed family
interest want members mind country area others done turned although open
god service certain kind problem began different door thus help sense
means whole matter perhaps itself york it's times law human line above
name example action company hands local show whether five history gave
today either act feet across taken past quite anything seen having death
week experience body word half really field am car words already themselves
information tell college shall money period held keep sure free seems
real behind cannot miss political air question making office brought
whose special heard major problems ago became federal moment study available
known result street economic boy position reason change south board
individual job society areas west close turn love community true court
force full seem wife future age wanted department voice center
woman control common policy necessary following front sometimes six girl
clear further land run students provide feel party able mother music
education university child effect level stood military short town morning
total outside rate figure class art century washington north usually
leave therefore evidence percent black strong value include error: file.
data, return; value, None self, def import print( len( list( dict(
""".split()

# Pointers in a binary page point near one of these regions, as a 64-bit
# x86 process's do: the heap after the executable, and mmap areas below the stack.
POINTER_REGIONS = (0x0000_5600_0000_0000, 0x0000_7F00_0000_0000)


@dataclass(frozen=True)
class Phase:
    """A stretch of `accesses` accesses with one pattern over pages
    offset .. offset+footprint-1; None takes synthesize()'s value."""
    pattern: str
    accesses: int
    offset: int = 0
    footprint: int | None = None
    skew: float | None = None
    write_fraction: float | None = None

    def check(self):
        if self.pattern not in PATTERNS:
            raise ConfigError(f"unknown access pattern '{self.pattern}': use "
                              + ", ".join(PATTERNS))
        _check_count("accesses", self.accesses, 1)
        _check_count("phase offset", self.offset, 0)
        _check_count("footprint in pages", self.footprint, 1)
        if not (isinstance(self.skew, (int, float)) and math.isfinite(self.skew)
                and self.skew > 0):
            raise ConfigError(f"zipf skew must be a number > 0, not {self.skew}")
        _check_fraction("write fraction", self.write_fraction)


def _check_count(what, value, least):
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{what} must be a whole number, not {value!r}")
    if value < least:
        raise ConfigError(f"{what} must be at least {least}, not {value}")


def _check_fraction(what, value):
    if not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise ConfigError(f"{what} must be between 0 and 1, not {value}")


def parse_phase(text):
    """A Phase from PATTERN:ACCESSES[:KEY=VALUE,...], KEY one of offset,
    footprint, skew, write-fraction; e.g. "zipf:20000:offset=4096,skew=1.2"."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ConfigError(f"cannot read phase '{text}': use PATTERN:ACCESSES[:KEY=VALUE,...], "
                          "e.g. zipf:20000:offset=4096,skew=1.2")
    settings = {"pattern": parts[0].strip(), "accesses": _number(parts[1], int, text)}
    converters = {"offset": int, "footprint": int, "skew": float, "write-fraction": float}
    for item in parts[2].split(",") if len(parts) == 3 else ():
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in converters:
            raise ConfigError(f"unknown phase setting '{key}' in '{text}': use "
                              + ", ".join(converters))
        settings[key.replace("-", "_")] = _number(value, converters[key], text)
    return Phase(**settings)


def parse_mix(text):
    """A content mix from KIND=WEIGHT,..., e.g. "zero=0.05,same=0.05,text=0.9"."""
    mix = {}
    for item in text.split(","):
        kind, equals, weight = item.partition("=")
        if not equals:
            raise ConfigError(f"cannot read mix '{text}': use KIND=WEIGHT,..., "
                              "e.g. zero=0.05,same=0.05,text=0.4,binary=0.3,random=0.2")
        mix[kind.strip()] = _number(weight, float, text)
    return mix


def _number(value, convert, text):
    try:
        return convert(value.strip())
    except ValueError:
        raise ConfigError(f"cannot read '{value.strip()}' in '{text}' as a number") from None


def check_mix(mix):
    """Reject a mix with an unknown kind, a weight below 0, no weight at all,
    or weights whose sum overflows (random.choices needs a finite total)."""
    unknown = sorted(set(mix) - set(CONTENT_KINDS))
    if unknown:
        raise ConfigError(f"unknown content kind '{unknown[0]}' in the mix: use "
                          + ", ".join(CONTENT_KINDS))
    for kind, weight in mix.items():
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"mix weight of {kind} must be a number >= 0, not {weight}")
    total = sum(mix.values())
    if total <= 0:
        raise ConfigError("the mix weights must add up to more than 0")
    if not math.isfinite(total):
        raise ConfigError("the mix weights add up to more than a float holds: "
                          "give smaller weights (only their proportions matter)")


class ContentMix:
    """Draws page kinds in the mix's proportions and makes their bytes."""

    def __init__(self, mix, source_pages=()):
        check_mix(mix)
        if mix.get("source", 0) > 0 and not source_pages:
            raise ConfigError("the mix asks for source pages but no source was given")
        self.kinds = [kind for kind in CONTENT_KINDS if mix.get(kind, 0) > 0]
        self.drawn = dict.fromkeys(self.kinds, 0)   # pages given each kind so far
        self._cum_weights = list(accumulate(mix[kind] for kind in self.kinds))
        self._source = source_pages
        self._makers = {"zero": lambda rng: ZERO_PAGE, "same": same_filled_page,
                        "text": text_page, "binary": binary_page, "random": random_page,
                        "source": lambda rng: rng.choice(self._source)}

    def draw_kind(self, rng):
        kind = rng.choices(self.kinds, cum_weights=self._cum_weights)[0]
        self.drawn[kind] += 1
        return kind

    def page(self, kind, seed):
        """The first content of a page of `kind`, made from `seed`."""
        return self._makers[kind](random.Random(seed))

    def rewrite(self, kind, seed, rng):
        """A function making what a later write leaves in the page first made
        by page(kind, seed).  The choices are drawn from `rng` now, the bytes
        are made only if the page is ever stored."""
        if kind in ("zero", "same"):
            return partial(self.page, kind, rng.getrandbits(64))
        length = 8 * rng.randint(1, 8)
        start, copied = (8 * rng.randrange(WORDS_PER_PAGE - length // 8 + 1) for _ in range(2))
        return partial(self._patched, kind, seed, start, copied, length)

    def _patched(self, kind, seed, start, copied, length):
        page = bytearray(self.page(kind, seed))
        page[start:start + length] = page[copied:copied + length]
        return bytes(page)


def same_filled_page(rng):
    """One non-zero byte repeated, or (as often) one non-zero 8-byte word."""
    if rng.random() < 0.5:
        return bytes([rng.randrange(1, 256)]) * PAGE_SIZE
    return struct.pack("<Q", rng.randrange(1, 1 << 64)) * WORDS_PER_PAGE


def text_page(rng):
    """Words from the vocabulary separated by spaces, cut at the page end."""
    text = b""
    while len(text) < PAGE_SIZE:
        text += " ".join(rng.choices(VOCABULARY, k=800)).encode() + b" "
    return text[:PAGE_SIZE]


def binary_page(rng):
    """64-bit words of a heap page, drawn from a palette: zero (about 30 %),
    pointers to 32 objects near one region (30 %), 32 small integers (30 %)
    and 8 random words, hashes or doubles (8 %).  lz4 packs it to about
    40 % of the page, as it does real heap pages."""
    near = rng.choice(POINTER_REGIONS) + (rng.getrandbits(28) << 12)
    palette = ([0] * 32 + [near + (rng.getrandbits(16) << 4) for _ in range(32)]
               + [rng.getrandbits(rng.choice((4, 8, 16, 32))) for _ in range(32)]
               + [rng.getrandbits(64) for _ in range(8)])
    return struct.pack(f"<{WORDS_PER_PAGE}Q", *rng.choices(palette, k=WORDS_PER_PAGE))


def random_page(rng):
    return rng.randbytes(PAGE_SIZE)


def load_source(path, rng, limit=MAX_SOURCE_PAGES):
    """Page images to sample from: the stored images of a trace (repeats
    kept, so they weigh as they did there) or the pages of a raw dump
    (N x 4096 bytes, optionally zstd-compressed).  A larger source is
    sampled down to `limit` pages, uniformly."""
    path = os.fspath(path)
    check_input(path, "source", block_device=True)
    with open(path, "rb") as f:
        is_trace = f.read(len(MAGIC)) == MAGIC
    pages = ((image for op, _type, _offset, image, _ts in TraceReader(path) if op == STORE)
             if is_trace else raw_pages(path))
    sample = []
    for seen, page in enumerate(pages):
        if seen < limit:
            sample.append(page)
        else:
            kept = rng.randrange(seen + 1)
            if kept < limit:
                sample[kept] = page
    if not sample:
        raise ConfigError(f"source {path} holds no pages")
    return sample


def generate_accesses(phases, accesses, content, rng):
    """Yield (kind, page number, content) for `accesses` accesses, running
    the (checked, fully set) phases in turn and over again."""
    pages = {}                         # page -> (content kind, seed of its first content)
    left = accesses
    zipf_weights = {}
    for phase in cycle(phases):
        count = min(phase.accesses, left)
        left -= count
        for page in _phase_pages(phase, count, rng, zipf_weights):
            state = pages.get(page)
            if state is None:
                kind, seed = content.draw_kind(rng), rng.getrandbits(64)
                pages[page] = kind, seed
                yield "write", page, partial(content.page, kind, seed)
            elif rng.random() < phase.write_fraction:
                yield "write", page, content.rewrite(*state, rng)
            else:
                yield "read", page, None
        if not left:
            return


def _phase_pages(phase, count, rng, zipf_weights):
    """Page numbers of one run of a phase.  Zipf rank r (weight 1/r**skew)
    is page offset+r-1; a sequential phase starts each run at its offset
    and wraps at its footprint."""
    first, size = phase.offset, phase.footprint
    if phase.pattern == "zipf":
        key = size, phase.skew
        if key not in zipf_weights:
            zipf_weights[key] = list(accumulate(rank ** -phase.skew
                                                for rank in range(1, size + 1)))
        cum_weights = zipf_weights[key]
        population = range(first, first + size)
    for start in range(0, count, ACCESS_CHUNK):
        chunk = min(ACCESS_CHUNK, count - start)
        if phase.pattern == "sequential":
            yield from (first + (start + i) % size for i in range(chunk))
        elif phase.pattern == "uniform":
            yield from (first + rng.randrange(size) for _ in range(chunk))
        else:
            yield from rng.choices(population, cum_weights=cum_weights, k=chunk)


def synthesize(output, ram_pages, accesses=None, footprint=None, pattern="zipf",
               zipf_skew=0.8, write_fraction=0.3, phases=None, mix=None, source=None,
               seed=0, description=None, progress=None, rate=None):
    """Write a synthetic trace to `output`; return the RamModel statistics
    and the pages made of each content kind (content_KIND).

    footprint defaults to twice ram_pages.  Without phases, one phase of
    `pattern` over the footprint makes `accesses` accesses (default four
    per footprint page).  With phases (Phase objects), they run in turn,
    over again until `accesses`, or once if accesses is None; their unset
    fields take footprint, zipf_skew and write_fraction.  mix maps content
    kinds to relative weights (default DEFAULT_MIX, or all source pages
    when a source is given).  progress(done, total) is called now and then
    with the accesses made.  rate: accesses per second, for timestamps."""
    _check_count("RAM in pages", ram_pages, 1)
    check_rate(rate)
    footprint = 2 * ram_pages if footprint is None else footprint
    _check_count("footprint in pages", footprint, 1)
    defaults = dict(footprint=footprint, skew=zipf_skew, write_fraction=write_fraction)
    if phases is None:
        phases = [Phase(pattern, ACCESSES_PER_PAGE * footprint if accesses is None
                        else accesses)]
    elif not phases:
        raise ConfigError("give at least one phase")
    phases = [replace(phase, **{name: value for name, value in defaults.items()
                                if getattr(phase, name) is None}) for phase in phases]
    for phase in phases:
        phase.check()
    if accesses is None:
        accesses = sum(phase.accesses for phase in phases)
    _check_count("accesses", accesses, 1)
    if mix is None:
        mix = {"source": 1.0} if source is not None else DEFAULT_MIX
    check_mix(mix)
    if source is not None and not mix.get("source", 0) > 0:
        raise ConfigError("a source is given but the mix gives it no weight: add source=WEIGHT")
    rng = random.Random(seed)
    content = ContentMix(mix, load_source(source, rng) if source is not None else ())
    if description is None:
        description = _describe(phases, accesses, mix, source, ram_pages, seed)

    stats = synthesize_from_accesses(output, generate_accesses(phases, accesses, content, rng),
                                     ram_pages, description, progress, total=accesses,
                                     rate=rate)
    stats.update({f"content_{kind}": content.drawn[kind] for kind in content.kinds})
    return stats


def synthesize_from_accesses(output, accesses, ram_pages, description=None, progress=None,
                             total=None, rate=None):
    """Write the trace that `accesses`, an iterable of (kind, page_key,
    content) as RamModel.access takes them, gives with `ram_pages` of RAM;
    return the RamModel statistics.  progress(done, total) is called now
    and then with the accesses consumed and `total` as given.  With `rate`
    (accesses per second) the events carry their access's time."""
    _check_count("RAM in pages", ram_pages, 1)
    check_rate(rate)
    if description is None:
        description = f"synthesized from an access sequence with {ram_pages} pages of RAM"
    with TraceWriter(output, description=description, timestamps=rate is not None) as writer:
        clocked = writer if rate is None else ClockedWriter(writer, rate)
        model = RamModel(clocked, ram_pages)
        done = 0
        for done, (kind, key, content) in enumerate(accesses, 1):
            if rate is not None:
                clocked.at_access(done - 1)
            model.access(kind, key, content)
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
        if progress is not None:
            progress(done, total)
        return model.finish()


NSEC_PER_SEC = 10 ** 9      # the unit of a trace's timestamps
MAX_RATE = NSEC_PER_SEC     # accesses per second: one a nanosecond at most


def check_rate(rate):
    """Refuse a rate that is not a number of accesses per second in 1..10^9
    (from 1 a second, 2^64 ns last 18 billion accesses)."""
    if rate is None:
        return
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or \
            not 1 <= rate <= MAX_RATE:
        raise ConfigError(f"accesses per second {rate!r} is outside 1..{MAX_RATE}")


class ClockedWriter:
    """A TraceWriter whose events carry the time of the access that made
    them: access i at i / rate seconds, in nanoseconds."""

    def __init__(self, writer, rate):
        self.writer = writer
        self.ns_per_access = NSEC_PER_SEC / rate
        self.now = 0

    def at_access(self, index):
        self.now = round(index * self.ns_per_access)

    def store(self, swap_type, offset, page):
        self.writer.store(swap_type, offset, page, self.now)

    def load(self, swap_type, offset):
        self.writer.load(swap_type, offset, self.now)

    def drop_clean(self, swap_type, offset):
        self.writer.drop_clean(swap_type, offset, self.now)

    def invalidate_page(self, swap_type, offset):
        self.writer.invalidate_page(swap_type, offset, self.now)


def _describe(phases, accesses, mix, source, ram_pages, seed):
    def phase_text(phase):
        skew = f" skew {phase.skew:g}" if phase.pattern == "zipf" else ""
        return (f"{phase.pattern}{skew} over pages {phase.offset}.."
                f"{phase.offset + phase.footprint - 1} for {phase.accesses} accesses, "
                f"write fraction {phase.write_fraction:g}")
    mix_text = ",".join(f"{kind}={weight:g}" for kind, weight in mix.items())
    source_text = f" (source {os.path.basename(os.fspath(source))})" if source else ""
    return (f"synthetic: {accesses} accesses in phases [{'; '.join(map(phase_text, phases))}], "
            f"content mix {mix_text}{source_text}, {ram_pages} pages of RAM, seed {seed}; "
            "made by zswapsim trace synth")
