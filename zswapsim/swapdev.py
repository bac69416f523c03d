"""The backing swap device: one 4096-byte slot per swap offset, per swap type.

Pages land here when zswap refuses them (the swap core then writes them out
itself) and when zswap writes an entry back to make room.  A slot is
addressed by the same (type, offset) the swap core allocated for the page,
so a device of `nr_slots` slots refuses offsets past its end.  Slots are
freed by discards, which is what invalidate_page and swapoff amount to.
`capacity` bounds how many pages may be swapped out at once (those zswap
holds included: each has its swap slot); the swap core checks it before a
page leaves RAM.  A FaultPlan in `faults` makes some writes fail (-EIO).
"""

from .errors import Invalid, WriteError


class SwapDevice:
    def __init__(self, nr_slots=None, capacity=None, faults=None):
        self.nr_slots = nr_slots
        self.capacity = capacity
        self.faults = faults
        self.slots = {}           # swap type -> {offset: page bytes}
        self.writes = 0
        self.reads = 0
        self.discards = 0

    def _check(self, offset):
        if self.nr_slots is not None and not 0 <= offset < self.nr_slots:
            raise Invalid(f"swap offset {offset} outside a device of {self.nr_slots} slots")

    def write(self, swap_type, offset, page):
        self._check(offset)
        if self.faults is not None and self.faults.fail("swap_write"):
            raise WriteError("injected swap device write failure")
        self.slots.setdefault(swap_type, {})[offset] = page
        self.writes += 1

    def read(self, swap_type, offset):
        """The page in the slot, or None when the slot holds nothing."""
        page = self.slots.get(swap_type, {}).get(offset)
        if page is not None:
            self.reads += 1
        return page

    def holds(self, swap_type, offset):
        return offset in self.slots.get(swap_type, ())

    def discard(self, swap_type, offset):
        area = self.slots.get(swap_type)
        if area is not None and area.pop(offset, None) is not None:
            self.discards += 1

    def discard_area(self, swap_type):
        area = self.slots.pop(swap_type, {})
        self.discards += len(area)

    def used_slots(self):
        return sum(len(area) for area in self.slots.values())
