"""Dump the resident private anonymous pages of a live process as raw pages.

Reads /proc/PID/maps for private writable mappings with no backing file
(heap, stack, anonymous mmaps), keeps the pages /proc/PID/pagemap marks
present, and copies them from /proc/PID/mem into a zstd-compressed file of
N x 4096 bytes, ready for `zswapsim trace import`.  Needs root or ptrace
rights over the process.

    python traces/dump_anon_pages.py PID OUT.raw.zst
"""

import struct
import sys

import zstandard

PAGE_SIZE = 4096
PRESENT = 1 << 63


def anonymous_ranges(pid):
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            addresses, perms = fields[0], fields[1]
            path = fields[5] if len(fields) > 5 else ""
            anonymous = not path or path in ("[heap]", "[stack]")
            if perms.startswith("rw") and perms[3] == "p" and anonymous:
                start, end = (int(a, 16) for a in addresses.split("-"))
                yield start, end


def dump(pid, out_path):
    pages = 0
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap, \
            open(f"/proc/{pid}/mem", "rb") as mem, \
            open(out_path, "wb") as out, \
            zstandard.ZstdCompressor(level=19).stream_writer(out) as writer:
        for start, end in anonymous_ranges(pid):
            pagemap.seek(start // PAGE_SIZE * 8)
            entries = pagemap.read((end - start) // PAGE_SIZE * 8)
            for i, (entry,) in enumerate(struct.iter_unpack("<Q", entries)):
                if entry & PRESENT:
                    mem.seek(start + i * PAGE_SIZE)
                    writer.write(mem.read(PAGE_SIZE))
                    pages += 1
    return pages


if __name__ == "__main__":
    print(f"{dump(int(sys.argv[1]), sys.argv[2])} pages")
