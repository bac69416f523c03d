"""One zswap configuration: every setting a replay takes, its default and
its valid range, declared and checked here and nowhere else.

The command line (its options' defaults and checks), the sweeps (compare,
tune_retries) and the Python API (replay(), Zswap()) all build a
ZswapConfig, so a value is accepted or refused, in the same words,
whichever way it comes in.

Ranges, from the kernel's own handling:
- max_pool_percent and accept_threshold_percent are `uint` module
  parameters with no set hook (module_param_named in mm/zswap.c): sysfs
  takes 0.  A max_pool_percent of 0 is a limit of no pages, which the first
  store passes (zswap_is_full: limit < pool pages) and every later one
  finds full; an accept_threshold_percent of 0 never lets the pool accept
  again once it was full.  Both end at 100.  From 100 up the limit is all
  of RAM, which the pool (living in RAM) can never pass, so every larger
  max_pool_percent behaves as 100.  At accept_threshold_percent 100 a full
  pool accepts again once below its limit; sysfs would take more, a
  threshold above the limit (accepting at exactly the limit too), which
  is refused here as no percentage of a limit.
- retries is reclaim_page's `unsigned int retries`, 0..2^32-1.  0 is a
  call that makes no try: zbud_reclaim_page and z3fold_reclaim_page return
  -EINVAL, 6.3's zs_reclaim_page -EAGAIN.  Tries past the LRU's length only
  go round it again, and the pools count such rounds rather than run them
  (zpool.base.ReclaimTries), so even the largest value costs a few rounds;
  only injected evict faults, which make every try differ, run them all.
- RAM (totalram_pages) is one page at least and memory.MAX_SIZE (4 PiB) at
  most, as any size; the swap device may hold no page at all.
- Fault rates are probabilities, 0..1.
- shrink_delay counts swap-outs (stores) between the shrink work's
  queueing and its start (zswap.py), 0..2^32-1: 0 starts it right after
  the store that queued it; a delay past a trace's stores runs it at the
  end.  shrink_step_cost and shrink_writeback_cost are the worker's time
  for a pass of its loop and for a pass that wrote a page back, in tenths
  of a swap-out (profiles.SWAP_OUT_TICKS), 0..10^6: 0 takes no time, and
  10^6 is a pass lasting 100,000 swap-outs, past any pace a kernel had.

Some settings run though the kernel they name never had them: zswap never
used xvmalloc (zram's allocator in staging), 3.11's zswap was built on zbud
alone, and 3.11 had no same-filled pages.  Those stay runnable, and
ZswapConfig.what_if() says so, from the kernel's profile (profiles.py).
"""

import dataclasses
from dataclasses import InitVar, dataclass, field
from numbers import Integral, Real

from . import memory
from .compress import compressor_what_if, get_compressor
from .errors import ConfigError
from .memory import MAX_SIZE, PAGE_SIZE, parse_size
from .profiles import DEFAULT_ZSWAP_KERNEL, NOT_SPECIAL, SWAP_ZEROMAP, kernel_profile
from .zpool import known_pools
from .zpool.base import check_pool_options

MAX_RETRIES = (1 << 32) - 1                 # UINT_MAX
MAX_PAGES = MAX_SIZE // PAGE_SIZE
MAX_SHRINK_DELAY = (1 << 32) - 1            # swap-outs: past a trace's stores, its end
MAX_SHRINK_COST = 10 ** 6                   # ticks of a pass of the shrink work

# Inclusive ranges of the integer settings (None: no value is also allowed).
RANGES = {"max_pool_percent": (0, 100), "accept_threshold_percent": (0, 100),
          "retries": (0, MAX_RETRIES), "ram_pages": (1, MAX_PAGES),
          "swap_capacity": (0, MAX_PAGES), "shrink_delay": (0, MAX_SHRINK_DELAY),
          "shrink_step_cost": (0, MAX_SHRINK_COST),
          "shrink_writeback_cost": (0, MAX_SHRINK_COST)}
# The settings whose None means the kernel profile's value.
PROFILE_DEFAULTS = ("shrink_delay", "shrink_step_cost", "shrink_writeback_cost")

DEFAULT_RAM = "4G"


@dataclass(frozen=True)
class Faults:
    """Injected failures (see faults.py): a rate per kind and the seed."""

    seed: int = 0
    alloc: float = 0.0
    swap_write: float = 0.0
    evict: float = 0.0

    def __post_init__(self):
        if isinstance(self.seed, bool) or not isinstance(self.seed, Integral):
            raise ConfigError(f"fault seed {self.seed!r} is not an integer")
        for kind in ("alloc", "swap_write", "evict"):
            check_rate(kind, getattr(self, kind))

    def any(self):
        return bool(self.alloc or self.swap_write or self.evict)


def check_rate(kind, rate):
    """A fault rate is a probability."""
    if isinstance(rate, bool) or not isinstance(rate, Real) or not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{kind} fault rate {rate!r} is outside 0..1")


@dataclass(frozen=True)
class ZswapConfig:
    """The settings of one zswap replay.  `ram` ("32M") and `swap_size`
    ("64M") are sizes that set ram_pages and swap_capacity; `faults` may be
    given as a dict of Faults' fields; `compressor` as a name or, from
    Python, a compressor object."""

    backend: str = "zbud"
    compressor: object = "lz4"
    ram_pages: int = memory.ram_pages(DEFAULT_RAM)
    max_pool_percent: int = 20
    accept_threshold_percent: int = 90
    retries: int = 8
    shrink_delay: object = None                 # swap-outs before queued shrink work starts;
    shrink_step_cost: object = None             # ticks of a pass of its loop, and of a
    shrink_writeback_cost: object = None        # pass writing back; None: the kernel's
    kernel: str = DEFAULT_ZSWAP_KERNEL
    same_filled_pages_enabled: object = None    # True / False; None: the kernel's default
    pool_options: dict = field(default_factory=dict, hash=False)
    swap_capacity: object = None                # pages swapped out at once; None: no bound
    faults: object = None                       # Faults, or None: no injected failures
    ram: InitVar[object] = None
    swap_size: InitVar[object] = None

    def __post_init__(self, ram, swap_size):
        def set_field(name, value):
            object.__setattr__(self, name, value)

        if ram is not None:
            set_field("ram_pages", memory.ram_pages(ram))
        if swap_size is not None:
            set_field("swap_capacity", parse_size(swap_size) // PAGE_SIZE)
        profile = kernel_profile("zswap", self.kernel)
        if self.backend not in known_pools():
            raise ConfigError(f"unknown backend '{self.backend}'; "
                              f"known: {', '.join(known_pools())}")
        profile.check_allocator(self.backend)
        set_field("pool_options", dict(self.pool_options or {}))
        check_pool_options(self.backend, self.pool_options)
        if isinstance(self.compressor, str):
            get_compressor(self.compressor, kernel=profile)
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if value is None and (name == "swap_capacity" or name in PROFILE_DEFAULTS):
                continue
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise ConfigError(f"{name} {value!r} is not an integer")
            if not low <= value <= high:
                raise ConfigError(f"{name} {value} is outside {low}..{high}")
        if not any(self.same_filled_pages_enabled is value for value in (None, True, False)):
            raise ConfigError("same_filled_pages_enabled is True, False or None (the "
                              f"kernel's default), not {self.same_filled_pages_enabled!r}")
        if self.same_filled_pages_enabled and profile.zero_pages == SWAP_ZEROMAP:
            raise ConfigError(f"Linux {profile.name}'s zswap has no same_filled_pages_enabled: "
                              "zero pages stay in the swap layer's zero map")
        if isinstance(self.faults, dict):
            known = [f.name for f in dataclasses.fields(Faults)]
            unknown = [name for name in self.faults if name not in known]
            if unknown:
                raise ConfigError(f"faults take {', '.join(known)}, not {', '.join(unknown)}")
            set_field("faults", Faults(**self.faults))
        if self.faults is not None and not isinstance(self.faults, Faults):
            raise ConfigError(f"faults {self.faults!r} is neither a dict nor a Faults")
        if self.faults is not None and not self.faults.any():
            set_field("faults", None)

    @classmethod
    def of(cls, config=None, **options):
        """A config from keyword settings, or `config` with some replaced;
        an unknown setting, or ram with ram_pages, is a ConfigError."""
        for given, alias in (("ram", "ram_pages"), ("swap_size", "swap_capacity")):
            if options.get(given) is not None and options.get(alias) is not None:
                raise ConfigError(f"give {given} or {alias}, not both")
        unknown = sorted(set(options) - set(SETTINGS))
        if unknown:
            raise ConfigError(f"unknown zswap setting {', '.join(unknown)}; "
                              f"known: {', '.join(SETTINGS)}")
        if config is None:
            return cls(**options)
        return dataclasses.replace(config, **options)

    @property
    def profile(self):
        return kernel_profile("zswap", self.kernel)

    def same_filled(self):
        """Whether same-filled pages are kept outside the pool."""
        if self.same_filled_pages_enabled is None:
            return self.profile.same_filled_default
        return self.same_filled_pages_enabled

    def effective(self, name):
        """A setting of PROFILE_DEFAULTS: its value, or the kernel
        profile's when that is None."""
        value = getattr(self, name)
        return getattr(self.profile, name) if value is None else value

    def what_if(self):
        """What in these settings no real kernel had, or None."""
        notes = [self.profile.what_if(self.backend),
                 compressor_what_if(self.compressor, self.profile)]
        if self.same_filled() and self.profile.zero_pages == NOT_SPECIAL:
            notes.append(f"{self.kernel}'s zswap had no same-filled pages")
        return "; ".join(note for note in notes if note) or None


SETTINGS = tuple(f.name for f in dataclasses.fields(ZswapConfig)) + ("ram", "swap_size")
DEFAULT = ZswapConfig()


def as_config(config):
    """A ZswapConfig, or one made from a dict of its settings."""
    return config if isinstance(config, ZswapConfig) else ZswapConfig.of(**config)


def parse_list(value, convert, what):
    """A list given as "a,b,c" (or already as a list): a tuple of its items,
    each through `convert`; an empty list is refused."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
        try:
            items = [convert(item) for item in items]
        except ValueError:
            raise ConfigError(f"'{value}' is not a comma-separated list of {what}") from None
    else:
        items = list(value)
    if not items:
        raise ConfigError(f"the list of {what} is empty")
    return tuple(items)
