"""Simulated RAM: the frame budget and the sizes users type."""

import pytest

from zswapsim.errors import ConfigError, NoMemory
from zswapsim.memory import Memory, parse_size, ram_pages


def test_sizes():
    assert parse_size("4096") == 4096
    assert parse_size("512K") == 512 * 1024
    assert parse_size("512M") == 512 * 1024 * 1024
    assert parse_size("4G") == 4 * 1024 ** 3
    assert parse_size("1.5g") == 3 * 1024 ** 3 // 2
    assert parse_size("2GiB") == 2 * 1024 ** 3
    assert ram_pages("4G") == 1048576 and ram_pages("32M") == 8192
    for bad in ("", "lots", "4X", "-1G", "1e9"):
        with pytest.raises(ConfigError):
            parse_size(bad)
    with pytest.raises(ConfigError):
        ram_pages("4095")


def test_budget_and_reuse():
    memory = Memory(totalram_pages=2)
    a = memory.alloc_page()
    b = memory.alloc_page()
    with pytest.raises(NoMemory):
        memory.alloc_page()
    memory.frames[b][:4] = b"real"
    memory.free_page(b)
    assert memory.free_pages() == 1
    again = memory.alloc_page()                   # last freed, first reused
    assert again == b and bytes(memory.frames[again][:4]) == b"real"
    assert memory.peak_pages == 2 and a != b
    assert Memory().free_pages() is None
