"""zram's recompression (CONFIG_ZRAM_MULTI_COMP): secondary algorithms and
the recompress file, as drivers/block/zram/zram_drv.c has them in 6.6, 6.12
and 6.18; Zram (zram.py) takes these methods.  Linux 6.2 brought it ("zram:
introduce recompress sysfs knob", 84b33bf78889): the 6.6, 6.12 and 6.18
profiles have it, 6.1 and 4.14 refuse it.

`recomp_algorithm` (recomp_algorithm_store): "algo=NAME priority=N", N from
1 to 3 (ZRAM_SECONDARY_COMP..ZRAM_MAX_COMPS - 1, default 1), each token
KEY=VALUE (a bare key or an empty value is -EINVAL), algo required, an
unknown algorithm -EINVAL.  __comp_algorithm_store refuses an initialized
device (-EBUSY): the algorithms are set before disksize.  The modelled
device has its disksize from the start, so recomp_algorithm is taken until
its first write.  From 6.12 each priority may have its own algorithm_params
(algorithm_params_store's priority=N or algo=NAME), here the `params`
argument or recomp_algorithm_params.

`recompress` (recompress_store): "type=idle|huge|huge_idle threshold=BYTES
max_pages=N algo=NAME", and from 6.12 "priority=N" (0 meaning 1); no type
means every slot.  threshold (kstrtouint) at or above huge_class_size is
-EINVAL; max_pages (kstrtoull) bounds the slots tried; algo=NAME looks
for the name from the start priority up and makes the walk that one
priority (none found: -EINVAL); priority=N starts and ends the walk at N.
From 6.15 ("zram: limit max recompress prio to num_active_comps") the last
priority is capped at the algorithms configured and an empty walk is
-EINVAL; before, the walk ran to ZRAM_MAX_COMPS and skipped holes, so a
device with no secondary algorithm took the write and did nothing.

Slots: only those with an allocator object are taken (same-filled and
written-back ones never), not ZRAM_INCOMPRESSIBLE, IDLE for type=idle,
HUGE for type=huge (both for huge_idle).  Before 6.13 the indexes are
walked in order; from 6.13 scan_slots_for_recompress puts the candidates,
less those already at the last priority, into the post-processing buckets
(object size / 64) and select_pp_slot takes them from the largest down, as
writeback does.  Per slot (zram_recompress, recompress_slot from 6.13):
- an object smaller than threshold is left, not counted against max_pages;
- the page is read (decompressed with the slot's own priority, or copied if
  huge); from 6.13 its IDLE flag is cleared whatever happens next;
- the walk starts past the slot's priority (ZRAM_COMP_PRIORITY), so a later
  call tries only higher ones; each configured algorithm compresses the
  page, and the first whose zs_lookup_class_index (the length as given,
  without zs_malloc's handle header) is below the old object's, and under
  threshold if one was given, wins: the class-drop rule.  A huge page's old
  length is PAGE_SIZE, the top class, so any length whose class is lower
  wins, even one at or above huge_class_size (stored then in a one-object
  class, but no longer HUGE);
- a slot the walk reached at all counts one against max_pages;
- no winner: ZRAM_INCOMPRESSIBLE when every secondary algorithm was tried
  in this walk and the last one missed the class drop (before 6.15), or
  when the walk ran to the last configured priority (6.15 on, threshold
  misses included); writeback=incompressible then takes it;
- a winner is allocated (no mem_limit check, no mem_used_max update: the
  kernel calls neither here), the old object freed by zram_free_page
  (compr_data_size, huge_pages fall; HUGE, IDLE, INCOMPRESSIBLE and the
  priority cleared, ac_time set to 0), then the new object, its length
  and priority set: compr_data_size grows by the new length.  huge_pages_since
  keeps counting the page.  A failed allocation ends the batch (-ENOMEM)
  with the old object kept.

Where this differs from the kernel: the kernel ignores an unknown key or
type value (type=cold recompresses every slot) and, before 6.15, takes a
walk with no algorithm in it as a no-op; both are a ConfigError here, the
message saying what the kernel would do.  The auto-recompression thread of
some vendor trees is not mainline and not modelled.
"""

import re

from .compress import get_compressor
from .errors import ConfigError, NoMemory, NoSpace
from .zram_writeback import PP_BUCKET_SIZE_RANGE

ZRAM_SECONDARY_COMP = 1
ZRAM_MAX_COMPS = 4
RECOMPRESS_TYPES = {"idle": (True, False), "huge": (False, True), "huge_idle": (True, True)}
ULLONG_MAX = 2 ** 64 - 1
UINT_MAX = 2 ** 32 - 1
_DECIMAL = re.compile(r"\+?[0-9]+\Z")


def sysfs_args(text, what):
    """(key, value) pairs of a "key=value ..." write (next_arg); a token
    without a value is -EINVAL."""
    pairs = []
    for token in text.split():
        key, sign, value = token.partition("=")
        if not sign or not value:
            raise ConfigError(f"{what} '{text}': '{token}' is not KEY=VALUE (-EINVAL)")
        pairs.append((key, value))
    return pairs


def _unsigned(value, highest, what, key):
    """kstrtouint / kstrtoull in base 10."""
    number = int(value) if value.isascii() and _DECIMAL.match(value) else -1
    if not 0 <= number <= highest:
        raise ConfigError(f"{what}: {key}={value} is not a decimal number up to {highest} "
                          "(-EINVAL)")
    return number


def _signed(value, what, key):
    """kstrtoint in base 10."""
    digits = value[1:] if value[:1] in "+-" else value
    if not digits.isascii() or not digits.isdigit():
        raise ConfigError(f"{what}: {key}={value} is not a decimal number (-EINVAL)")
    return int(value)


class Recompress:
    """recomp_algorithm and recompress of a Zram; the Zram keeps `slots`,
    `stats`, `pool`, `geometry` (its zsmalloc class table), `compressor`
    and `profile`."""

    def _init_recompress(self):
        self.comps = [self.compressor, None, None, None]   # by priority, 0 the primary
        self.comp_algs = [self.compressor.name, None, None, None]

    def recomp_algorithm(self, text, compressor=None, params=None):
        """echo "algo=NAME priority=N" > recomp_algorithm, with that priority's
        algorithm_params (6.12+) in `params`; `compressor`, if given, is the
        object NAME stands for (as Zram's own `compressor` may be)."""
        self._check_feature("recompression", "recompress")
        what = f"recomp_algorithm '{text}'"
        algo, prio = None, ZRAM_SECONDARY_COMP
        for key, value in sysfs_args(text, "recomp_algorithm"):
            if key == "algo":
                algo = value
            elif key == "priority":
                prio = _signed(value, what, key)
            else:
                raise ConfigError(f"{what}: it reads algo and priority, not '{key}' (the "
                                  "kernel skips other keys silently)")
        if algo is None:
            raise ConfigError(f"{what}: no algo=NAME (-EINVAL)")
        if not ZRAM_SECONDARY_COMP <= prio < ZRAM_MAX_COMPS:
            raise ConfigError(f"{what}: priority {prio} is not 1..{ZRAM_MAX_COMPS - 1} "
                              "(-EINVAL)")
        if self.slots or any(self.stats.values()):
            raise ConfigError(f"{what}: the device is in use; secondary algorithms are set "
                              "before disksize (-EBUSY)")
        if compressor is None:
            compressor = self._secondary_compressor(algo, params)
        elif params:
            raise ConfigError("algorithm_params need a compressor named by its algorithm")
        self.comps[prio] = compressor
        self.comp_algs[prio] = algo

    def recomp_algorithm_params(self, text):
        """echo "priority=N level=L" (or "algo=NAME level=L") > algorithm_params
        for a secondary algorithm already set (6.12+); the other keys are
        the backend's algorithm_params."""
        what = f"algorithm_params '{text}'"
        prio, algo, params = None, None, []
        for key, value in sysfs_args(text, "algorithm_params"):
            if key == "priority":
                prio = _signed(value, what, key)
            elif key == "algo":
                algo = value
            else:
                params.append(f"{key}={value}")
        if algo is not None:
            prio = next((p for p in range(ZRAM_SECONDARY_COMP, ZRAM_MAX_COMPS)
                         if self.comp_algs[p] == algo), None)
            if prio is None:
                raise ConfigError(f"{what}: no secondary algorithm {algo} (-EINVAL)")
        if prio is None or not ZRAM_SECONDARY_COMP <= prio < ZRAM_MAX_COMPS \
                or self.comps[prio] is None:
            raise ConfigError(f"{what}: name a secondary algorithm set by recomp_algorithm, "
                              "by priority=1..3 or algo=NAME")
        self.recomp_algorithm(f"algo={self.comp_algs[prio]} priority={prio}",
                              params=" ".join(params))

    def _secondary_compressor(self, algo, params):
        from .zram import _backend_compressor, _backend_params, parse_algorithm_params

        if isinstance(params, str):
            params = parse_algorithm_params(params)
        checked = _backend_params(self.profile, algo, params)
        if checked is not None:
            return _backend_compressor(self.profile, algo, checked)
        try:
            return get_compressor(algo, kernel=self.profile.name, user="zram")
        except ConfigError as error:
            raise ConfigError(f"recomp_algorithm algo={algo}: {error} (-EINVAL)") from None

    def parse_recompress(self, text):
        """recompress_store's reading of `text`, checked against this device:
        (idle, huge, threshold, max_pages or None, first priority, priority
        past the last)."""
        self._check_feature("recompression", "recompress")
        what = f"recompress '{text}'"
        profile = self.profile
        idle = huge = False
        threshold, max_pages, algo = 0, None, None
        prio, prio_max = ZRAM_SECONDARY_COMP, ZRAM_MAX_COMPS
        for key, value in sysfs_args(text, "recompress"):
            if key == "type":
                if value not in RECOMPRESS_TYPES:
                    raise ConfigError(f"{what}: type={value} is not one of "
                                      f"{', '.join(RECOMPRESS_TYPES)} (the kernel ignores it "
                                      "and recompresses every slot)")
                idle, huge = RECOMPRESS_TYPES[value]
            elif key == "max_pages":
                max_pages = _unsigned(value, ULLONG_MAX, what, key)
            elif key == "threshold":
                threshold = _unsigned(value, UINT_MAX, what, key)
            elif key == "algo":
                algo = value
            elif key == "priority" and profile.recompress_priority:
                prio = max(_unsigned(value, UINT_MAX, what, key), ZRAM_SECONDARY_COMP)
                prio_max = min(prio + 1, ZRAM_MAX_COMPS)
            else:
                keys = "type, threshold, max_pages, algo" + (
                    ", priority" if profile.recompress_priority else "")
                raise ConfigError(f"{what}: Linux {profile.name}'s recompress reads {keys}, "
                                  f"not '{key}' (the kernel skips it silently)")
        if threshold >= self.huge_class_size:
            raise ConfigError(f"{what}: threshold {threshold} is not below huge_class_size "
                              f"{self.huge_class_size} (-EINVAL)")
        if algo is not None:
            found = next((p for p in range(prio, ZRAM_MAX_COMPS)
                          if self.comp_algs[p] == algo), None)
            if found is None:
                raise ConfigError(f"{what}: no secondary algorithm {algo} at priority "
                                  f"{prio} or above (-EINVAL)")
            prio, prio_max = found, found + 1
        active = sum(comp is not None for comp in self.comps)
        if profile.recompress_limits_priority:
            prio_max = min(prio_max, active)
            if prio >= prio_max:
                raise ConfigError(f"{what}: no secondary algorithm to try (priorities "
                                  f"{prio} and up, {active - 1} configured; -EINVAL)")
        elif not any(self.comps[p] for p in range(prio, min(prio_max, ZRAM_MAX_COMPS))):
            raise ConfigError(f"{what}: no secondary algorithm at priority {prio} or above "
                              f"(recomp_algorithm first; Linux {profile.name} takes the "
                              "write and recompresses nothing)")
        return idle, huge, threshold, max_pages, prio, prio_max

    def recompress(self, text):
        """echo TEXT > recompress: {recompressed: new copies kept, attempted:
        slots counted against max_pages, incompressible: slots so marked},
        and stopped_by "-ENOMEM" if an allocation ended the batch."""
        idle, huge, threshold, max_pages, prio, prio_max = self.parse_recompress(text)
        budget = [max_pages]
        report = {"recompressed": 0, "attempted": 0, "incompressible": 0}
        for index in self._recompress_candidates(idle, huge, prio_max):
            if budget[0] == 0:
                break
            slot = self.slots[index]
            try:
                outcome = self._recompress_slot(index, slot, threshold, prio, prio_max, budget)
            except (NoMemory, NoSpace):
                report["attempted"] += 1
                report["stopped_by"] = "-ENOMEM"
                break
            if outcome is None:
                continue
            report["attempted"] += 1
            if outcome != "missed":
                report[outcome] += 1
        return report

    def _recompress_candidates(self, idle, huge, prio_max):
        def taken(index):
            slot = self.slots[index]
            return (slot.handle is not None and slot.block is None and not slot.incompressible
                    and (slot.idle or not idle) and (slot.huge or not huge))

        chosen = sorted(filter(taken, self.slots))
        if not self.profile.recompress_largest_first:
            return chosen
        buckets = {}
        for index in chosen:
            slot = self.slots[index]
            if slot.priority + 1 < prio_max:
                buckets.setdefault(slot.size // PP_BUCKET_SIZE_RANGE, []).append(index)
        return [index for bucket in sorted(buckets, reverse=True)
                for index in reversed(buckets[bucket])]

    def _recompress_slot(self, index, slot, threshold, prio, prio_max, budget):
        """One slot; None when it was left before any algorithm ran, else
        "recompressed", "incompressible" or "missed"."""
        if slot.size < threshold:
            return None
        page = self.peek(index)
        if self.profile.recompress_clears_idle:
            slot.idle = False
        lookup = self.geometry.lookup_class_index
        old_class = lookup(slot.size)
        prio = max(prio, slot.priority + 1)
        limits = self.profile.recompress_limits_priority
        if limits and prio >= prio_max:
            return None
        tried, winner, class_missed = 0, None, False
        for prio in range(prio, prio_max):
            comp = self.comps[prio]
            if comp is None:
                continue
            tried += 1
            data = comp.compress(page)
            class_missed = lookup(len(data)) >= old_class
            if class_missed or (threshold and len(data) >= threshold):
                continue
            winner = data
            break
        else:
            prio = prio_max
        if not tried and not limits:
            return None
        if budget[0]:
            budget[0] -= 1
        if winner is None:
            if limits:
                exhausted = prio >= sum(comp is not None for comp in self.comps)
            else:
                secondaries = sum(comp is not None for comp in self.comps[1:])
                exhausted = class_missed and tried == secondaries
            slot.incompressible = slot.incompressible or exhausted
            return "incompressible" if exhausted else "missed"
        handle = self.pool.malloc(len(winner))
        self.pool.write(handle, winner)
        self.pool.free(slot.handle)
        stats = self.stats
        stats["compr_data_size"] += len(winner) - slot.size
        if slot.huge:
            stats["huge_pages"] -= 1
        slot.handle, slot.size, slot.priority = handle, len(winner), prio
        slot.huge = slot.idle = slot.incompressible = False
        slot.ac_time = 0
        return "recompressed"
