"""release_free_memory gives freed heap pages back (the full-game worker's memory grew without it)."""

from __future__ import annotations

import subprocess
import sys

from zeb_core.ops.memory import release_free_memory, resident_mib

_CHILD = """
from zeb_core.ops.memory import release_free_memory, resident_mib
before = resident_mib()
blocks = [bytearray(1024) for _ in range(300_000)]  # about 300 MB of small heap blocks
pin = bytearray(1024)  # a live block above them, so free() alone cannot shrink the heap from the top
del blocks
freed = resident_mib()
assert release_free_memory()
print(before, freed, resident_mib())
"""


def test_trimming_returns_freed_small_blocks_to_the_system() -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, check=True)
    before, freed, trimmed = map(float, out.stdout.split())
    assert freed - before > 200, (before, freed, trimmed)  # free() kept the pages
    assert freed - trimmed > 150, (before, freed, trimmed)  # malloc_trim gave them back


def test_release_is_safe_to_call_again_and_memory_is_read() -> None:
    assert release_free_memory() and release_free_memory()
    assert resident_mib() > 10
