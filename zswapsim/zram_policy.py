"""A policy of timed sysfs writes during a zram replay: what ChromeOS's and
Android's memory daemons do to a zram device every so many minutes (mark
pages idle, then write them back or recompress them, within page budgets),
read from a TOML file and played at those times on the trace's clock.

The file is a list of actions, each a [[action]] table:

    [[action]]
    recomp_algorithm = "algo=zstd priority=1"   # before the first write only

    [[action]]
    at = "30m"          # first run: seconds (a number) or "90s", "30m", "2h", "1d"
    every = "1h"        # then again every hour of trace time (optional)
    idle = 1800         # echo 1800 > idle  ("all", or an age in whole seconds)

    [[action]]
    at = "30m"
    every = "1h"
    recompress = "type=idle max_pages=500"

Each table has `at` (default 0), optionally `every` (greater than 0) and
exactly one sysfs write, named by its file:
- idle = "all" | SECONDS            echo ... > idle
- writeback = "idle" | "huge" | "huge_idle" | "incompressible" | "page_index=N"
- writeback_limit = PAGES           writeback_limit, with writeback_limit_enable = 1
- recomp_algorithm = "algo=NAME priority=N"  (6.2+), with optionally
  algorithm_params = "level=N" for that priority (6.12+); the kernel takes it
  only before disksize (-EBUSY after), so only at = 0 without `every`: it is
  set before the replay starts
- recompress = "type=... threshold=... max_pages=... algo=... priority=..."
- compact = true                    echo 1 > compact

The clock is the replay's (zram_replay.py): the trace's timestamps, else
one second per event, the first event at second 1.  An action due at T runs
once the clock has passed T, before the first event later than T; what is
still due when the trace ends runs after its last event (at = its clock or
earlier).  Actions due together run in time order, those at the same time
in file order.  An action with `every` runs at T, T + every, T + 2 every, ...
while the trace lasts.

Every mistake is found before the replay starts, as one ConfigError line
naming the action: a TOML syntax error, an unknown key, a bad time, a
table with no action or two, and an action this device cannot do (checked
with the device's own parsers, so writeback without a backing device, an
unknown writeback mode, recompress on 6.1, a threshold at or above
huge_class_size, or an algo= no recomp_algorithm set all fail here).

The report gives, per action, how often it ran and what it did in total:
pages marked idle, written back, recompressed (and attempted, marked
incompressible), pages compaction freed, and the errors that ended a batch
(-EIO when writeback_limit ran out, -ENOSPC on a full backing device,
-ENOMEM), with how many runs each ended.
"""

import heapq
import re
import tomllib

from .errors import ConfigError
from .zram_writeback import NSEC_PER_SEC

ACTIONS = ("idle", "writeback", "writeback_limit", "recomp_algorithm", "recompress", "compact")
TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TIME = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])\Z")


def _seconds(value, key, where):
    """A time in seconds: a number, or a string with a unit."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{where}: {key} = {value!r}: expected seconds or a time like '30m'")
    if isinstance(value, str):
        match = _TIME.match(value)
        if match is None:
            raise ConfigError(f"{where}: {key} = {value!r}: expected seconds or a number with "
                              "s, m, h or d, like '30m'")
        value = float(match.group(1)) * TIME_UNITS[match.group(2)]
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{where}: {key} = {value!r}: not a time of 0 or more seconds")
    return value


class Action:
    """One [[action]] table: when it runs and the sysfs write it stands for."""

    def __init__(self, number, at, every, name, value, params):
        self.number = number        # its place in the file, from 1
        self.at, self.every = at, every
        self.name, self.value, self.params = name, value, params
        self.runs = 0
        self.totals = {}
        self.stopped_by = {}

    def describe(self):
        value = "1" if self.name == "compact" else self.value
        return f"{self.name}={value}"

    def check(self, device):
        """The write's own validation on `device`, without its effect
        (recomp_algorithm, a setup write, takes effect here)."""
        name, value = self.name, self.value
        if name == "idle":
            if value != "all" and not (isinstance(value, int) and not isinstance(value, bool)
                                       and value >= 0):
                raise ConfigError(f"idle = {value!r}: expected 'all' or whole seconds")
            device._check_feature("idle marking", "writeback")
        elif name == "writeback":
            device._writeback_filter(_text(name, value))
        elif name == "writeback_limit":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"writeback_limit = {value!r}: expected pages, 0 or more")
            device._check_feature("writeback_limit", "writeback")
        elif name == "recomp_algorithm":
            if self.at or self.every is not None:
                raise ConfigError("recomp_algorithm is taken only before disksize (-EBUSY "
                                  "after): give it at = 0 and no every")
            device.recomp_algorithm(_text(name, value), params=self.params)
            self.runs = 1
        elif name == "recompress":
            device.parse_recompress(_text(name, value))
        elif value is not True:
            raise ConfigError(f"compact = {value!r}: expected true")

    def apply(self, device):
        """Run the write on `device`; its outcome is added to the totals."""
        name, value = self.name, self.value
        outcome = {}
        if name == "idle":
            outcome["marked"] = device.mark_idle(value)
        elif name == "writeback":
            outcome["written_back"], error = device.writeback(value)
            if error:
                outcome["stopped_by"] = "-" + error
        elif name == "writeback_limit":
            device.set_writeback_limit(value)
            outcome["writeback_limit"] = value
        elif name == "recompress":
            outcome = device.recompress(value)
        elif name == "compact":
            outcome["pages_compacted"] = device.compact()
        self.runs += 1
        error = outcome.pop("stopped_by", None)
        if error:
            self.stopped_by[error] = self.stopped_by.get(error, 0) + 1
        for key, number in outcome.items():
            self.totals[key] = number if key == "writeback_limit" \
                else self.totals.get(key, 0) + number

    def report(self):
        entry = {"action": self.describe(), "at": self.at}
        if self.every is not None:
            entry["every"] = self.every
        entry["runs"] = self.runs
        entry |= self.totals
        if self.stopped_by:
            entry["stopped_by"] = dict(self.stopped_by)
        return entry


def _text(name, value):
    if not isinstance(value, str):
        raise ConfigError(f"{name} = {value!r}: expected a string, the text written to "
                          f"{name}")
    return value


class Policy:
    """The actions of a policy file, checked against one device, and the
    queue of their next runs."""

    def __init__(self, actions, label="policy"):
        self.actions = actions
        self.label = label
        self.queue = []             # (time in ns, file order, action)
        self.next_ns = float("inf")

    @classmethod
    def load(cls, path):
        try:
            with open(path, "rb") as f:
                document = tomllib.load(f)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"policy {path}: {error}") from None
        return cls.parse(document, f"policy {path}")

    @classmethod
    def parse(cls, document, label="policy"):
        extra = set(document) - {"action"}
        if extra:
            raise ConfigError(f"{label}: unknown top-level key '{sorted(extra)[0]}'; the file "
                              "holds [[action]] tables")
        tables = document.get("action", [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise ConfigError(f"{label}: 'action' must be [[action]] tables")
        return cls([_action(number, table, label)
                    for number, table in enumerate(tables, 1)], label)

    def prepare(self, device):
        """Check every action on the fresh `device` (setting its secondary
        algorithms) and queue the first runs."""
        ordered = sorted(self.actions, key=lambda a: a.name != "recomp_algorithm")
        for action in ordered:
            try:
                action.check(device)
            except ConfigError as error:
                raise ConfigError(f"{self.label}: action {action.number} "
                                  f"({action.describe()}): {error}") from None
        self.queue = [(round(action.at * NSEC_PER_SEC), action.number, action)
                      for action in self.actions if action.name != "recomp_algorithm"]
        heapq.heapify(self.queue)
        self._update()

    def _update(self):
        self.next_ns = self.queue[0][0] if self.queue else float("inf")

    def run_due(self, device, clock_ns, inclusive=False):
        """Run every action due before `clock_ns` (at or before it when
        `inclusive`), in time and then file order, each with the device's
        clock at its own time."""
        queue = self.queue
        while queue and (queue[0][0] < clock_ns or inclusive and queue[0][0] <= clock_ns):
            due, number, action = heapq.heappop(queue)
            device.clock_ns = due
            action.apply(device)
            if action.every is not None:
                heapq.heappush(queue, (due + round(action.every * NSEC_PER_SEC), number,
                                       action))
        self._update()

    def report(self):
        return [action.report() for action in self.actions]


def _action(number, table, label):
    where = f"{label}: action {number}"
    unknown = set(table) - {"at", "every", "algorithm_params"} - set(ACTIONS)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}' (an action has at, "
                          f"every and one of {', '.join(ACTIONS)})")
    names = [name for name in ACTIONS if name in table]
    if len(names) != 1:
        raise ConfigError(f"{where}: " + ("no action" if not names else
                                          f"{' and '.join(names)} in one table") +
                          f"; give exactly one of {', '.join(ACTIONS)}")
    name = names[0]
    params = table.get("algorithm_params")
    if params is not None and (name != "recomp_algorithm" or not isinstance(params, str)):
        raise ConfigError(f"{where}: algorithm_params goes, as a string, with "
                          "recomp_algorithm only")
    at = _seconds(table.get("at", 0), "at", where)
    every = table.get("every")
    if every is not None:
        every = _seconds(every, "every", where)
        if not every:
            raise ConfigError(f"{where}: every = {table['every']!r}: must be more than 0")
    return Action(number, at, every, name, table[name], params)
