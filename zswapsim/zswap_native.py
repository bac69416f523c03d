"""The native engine's Zswap: zswapsim/_engine/zswap.c, the compiled twin of
zswap.py's Zswap with its own RAM (memory.c), swap device (swapdev.c) and
fault plan (faults.c), one call per operation, as _heapq stands behind heapq.

zswap.py stays the reference and the specification; NativeZswap must agree
with it call for call (tests/test_zswap_engines.py drives both with the same
operations). It is built from the same ZswapConfig and keywords, through the
same derivation (zswap.derived_settings), and compresses through a
compression cache with the Python Zswap's results and hits: by default
compress.py's NativeCompressionCache, which the binding calls in C (a
CompressionCache given as the compressor is called in Python). What differs:
the RAM and the swap device are the engine's own (a `memory` or `swapdev`
given is a ConfigError), swap types are 0..31 and offsets below 2^58
(ValueError otherwise, as the trace format bounds them), pages are 4096
bytes, and a FaultPlan given goes on from its generator's state in the
engine (the object itself is left as it was; `faults` counts what the engine
injects). The allocators are the compiled ones (zpool/native.py); a backend
with no compiled twin is a ConfigError naming the ones there are.
"""

import inspect

from . import _engine
from .compress import PAGE_SIZE, page_key
from .config import ZswapConfig
from .errors import ConfigError
from .faults import FaultPlan
from .profiles import (CHECK_LIMITS, RECLAIM_ON_STORE, REJECT_AND_SHRINK,
                       REJECT_SHRINK_EACH_TIME, SHRINK_LRU_TO_ACCEPT, SWAP_OUT_TICKS)
from .zpool.base import known_pools, pool_driver
from .compress import NativeCompressionCache
from .zswap import compression_cache, derived_settings, first_unheld, ordered_counters

# zswap.h's enum zswap_limit_rule and enum zswap_shrink_rule
LIMIT_RULES = {RECLAIM_ON_STORE: 0, REJECT_AND_SHRINK: 1, REJECT_SHRINK_EACH_TIME: 2,
               CHECK_LIMITS: 3}
SHRINK_RECLAIM_PAGE, SHRINK_LRU_UNTIL_ACCEPT, SHRINK_LRU_SECOND_CHANCE = range(3)
# The engine's settings that are derived_settings' own, under the same names.
DERIVED = ("limit_pages", "accept_pages", "retries", "shrink_delay", "shrink_step_cost",
           "shrink_writeback_cost", "header_len",
           "compress_buffer", "zswap_lru", "zero_map", "evictable", "invalidate_duplicates",
           "counts_invalidated_duplicates", "store_as_is", "count_compress_fail")
# struct zpool_options: every option a compiled pool may take
POOL_OPTIONS = ("chain_size", "key_in_handle")


def _pool_options(backend, options):
    """struct zpool_options for `backend`: the options given, each other one
    the Python pool's default (0 where the pool takes no such option)."""
    parameters = inspect.signature(pool_driver(backend)).parameters
    return {name: options.get(name, parameters[name].default if name in parameters else 0)
            for name in POOL_OPTIONS}


def _seed_words(seed):
    """random.seed's key for an int seed: abs(seed)'s 32-bit words, least
    significant first (one word 0 for a seed of 0)."""
    seed = abs(seed)
    return tuple((seed >> shift) & 0xFFFFFFFF
                 for shift in range(0, max(seed.bit_length(), 1), 32))


class NativeFaults:
    """FaultPlan's view of the engine's fault plan: the rates and the faults
    injected so far."""

    def __init__(self, engine, rates):
        self._engine = engine
        self.rates = dict(rates)

    @property
    def injected(self):
        return self._engine.injected()


class _Device:
    """The swap device's counters, as SwapDevice shows them."""

    def __init__(self, zswap):
        self._zswap = zswap

    def used_slots(self):
        return self._zswap._engine.counts()["swap_used_slots"]

    writes = property(lambda self: self._zswap._engine.counts()["swap_writes"])
    reads = property(lambda self: self._zswap._engine.counts()["swap_reads"])
    discards = property(lambda self: self._zswap._engine.counts()["swap_discards"])


class _Ram:
    """The simulated RAM's counters, as Memory shows them."""

    def __init__(self, zswap):
        self._zswap = zswap
        self.totalram_pages = zswap.config.ram_pages

    def free_pages(self):
        return self._zswap._engine.counts()["ram_free_pages"]

    used_pages = property(lambda self: self._zswap._engine.counts()["ram_used_pages"])
    peak_pages = property(lambda self: self._zswap._engine.counts()["ram_peak_pages"])


class NativeZswap:
    """Zswap(config, **settings) run by the compiled engine; see the module
    comment for what differs from zswap.Zswap."""

    engine = "native"

    def __init__(self, config=None, *, fault_plan=None, **settings):
        given = [name for name in ("memory", "swapdev") if settings.pop(name, None) is not None]
        if given:
            raise ConfigError(f"the native engine keeps its own RAM and swap device: give "
                              f"ram/ram_pages and swap_size/swap_capacity, not {given[0]}=")
        config = ZswapConfig.of(config, **settings)
        backend = config.backend
        if backend not in known_pools("native"):
            raise ConfigError(f"the native engine has no {backend} pool yet; it has "
                              f"{', '.join(known_pools('native'))}")
        profile = config.profile
        self.config, self.profile, self.kernel, self.backend = \
            config, profile, profile.name, backend
        self.compressor = compression_cache(config, NativeCompressionCache)
        vars(self).update(derived_settings(config, config.ram_pages))
        params = {name: getattr(self, name) for name in DERIVED}
        params.update(
            _pool_options(backend, self.pool_options), backend=backend,
            ram_pages=config.ram_pages, swap_capacity=config.swap_capacity,
            swap_out_ticks=SWAP_OUT_TICKS, same_filled=self.same_filled_pages_enabled,
            limit_rule=LIMIT_RULES[profile.limit_rule],
            shrink_rule=SHRINK_LRU_SECOND_CHANCE if profile.shrink_rule == SHRINK_LRU_TO_ACCEPT
            else SHRINK_LRU_UNTIL_ACCEPT if self.zswap_lru else SHRINK_RECLAIM_PAGE,
            zpools_per_pool=profile.zpools_per_pool,
            shrink_failures_max=profile.shrink_failures_max or 0,
            exclusive_loads=profile.exclusive_loads, second_chance=profile.second_chance,
            pool_per_swap_type=profile.pool_per_swap_type)
        faults, rates = self._fault_state(config, fault_plan)
        engine = self._engine = _engine.Zswap(self.compressor, params, faults)
        self.faults = NativeFaults(engine, rates) if faults else None
        self.swapdev, self.memory = _Device(self), _Ram(self)
        # the operations: one call into the engine each
        self.store, self.load = engine.store, engine.load
        self.invalidate_page, self.invalidate_area = engine.invalidate_page, \
            engine.invalidate_area
        self.evict_loaded, self.run_pending_work = engine.evict_loaded, \
            engine.run_pending_work
        self.where, self.peek, self.pool_pages = engine.where, engine.peek, engine.pool_pages

    @staticmethod
    def _fault_state(config, plan):
        """(the engine's faults argument, the rates by kind), or (None, None)."""
        if plan is None and config.faults is None:
            return None, None
        if plan is None:
            rates = {kind: getattr(config.faults, kind) for kind in ("alloc", "swap_write",
                                                                       "evict")}
            seed = _seed_words(config.faults.seed)
        else:
            if not isinstance(plan, FaultPlan):
                raise ConfigError(f"fault_plan {plan!r} is not a FaultPlan")
            rates = plan.rates
            state = plan.rng.getstate()[1]
            seed = (state[:-1], state[-1])
        return ((rates["alloc"], rates["swap_write"], rates["evict"]), seed), rates

    def __getattr__(self, name):
        """The engine's counters as attributes, as zswap.Zswap has them."""
        if name.startswith("_"):
            raise AttributeError(name)
        counts = self._values()
        if name in counts:
            return counts[name]
        raise AttributeError(f"'NativeZswap' object has no attribute '{name}'")

    def _values(self):
        values = self._engine.counts()
        values.update(pool_total_size=values["pool_pages"] * PAGE_SIZE,
                      zswpwb=values["written_back_pages"], pswpout=values["swap_writes"],
                      pswpin=values["swap_reads"], pool_limit_pages=self.limit_pages,
                      compress_cache_hits=self.compressor.hits)
        return values

    def counters(self):
        """Every counter by name, as zswap.Zswap.counters gives them."""
        return ordered_counters(self, self._values())

    def slots_in_use(self):
        return self._engine.counts()["slots_in_use"]

    @property
    def shrink_pending(self):
        """Whether the shrink work is queued, not started."""
        return bool(self._engine.counts()["shrink_pending"])

    @property
    def shrink_running(self):
        """Whether a run of the shrink work is under way."""
        return bool(self._engine.counts()["shrink_running"])

    @property
    def pool_reached_full(self):
        return bool(self._engine.counts()["pool_reached_full"])

    @property
    def pool_total_size(self):
        return self.pool_pages() * PAGE_SIZE

    def holds_page(self, swap_type, offset, key):
        """zswap.Zswap.holds_page: the cached compressed form compared when
        the cache still has it, else the page a load would find (in C over
        the compiled cache)."""
        if isinstance(self.compressor, NativeCompressionCache):
            return self._engine.holds_page(swap_type, offset, key)
        data = self._engine.compressed(swap_type, offset)
        if data is not None:
            expected = self.compressor.cached(key)
            if expected is not None:
                return data == expected
        page = self.peek(swap_type, offset)
        return page is not None and page_key(page) == key

    def first_unheld(self, live, verify, resident=()):
        """zswap.first_unheld, in C over the compiled cache."""
        if isinstance(self.compressor, NativeCompressionCache):
            return self._engine.first_unheld(live, verify, resident)
        return first_unheld(self, live, verify, resident)

    def has_class_stats(self):
        return self.backend == "zsmalloc"

    def class_stats(self):
        """zsmalloc's debugfs `classes` rows, summed over the pools."""
        return self._engine.class_stats()
