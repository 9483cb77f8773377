"""How the server's process holds memory: glibc's malloc tuned so that freed memory goes back to the system, and
a trim after each heavy job (docs/decisions.md, "Memory a Space can hold").

    from cvdemo import memory
    memory.tune_malloc()   # once, at the server's start (app.py through cvdemo.ui.build_demo)
    memory.settle()        # once the app is built: what lives as long as the process leaves the collector's walks
    memory.trim()          # after a job: free heap pages go back now

Why: glibc gives each thread that allocates its own arena (up to 8 per core) and keeps freed memory in them as
free but resident pages until asked to give it back: tensors freed after a job stayed in the heaps. Two arenas
for all threads, and a trim after each job, give it back. (A fixed mmap threshold would unmap big tensors the
moment they are freed, but every training step then faults its activations in afresh: 3x the page faults and
about 15% more CPU time for a fine-tune, so it is not set.) Elsewhere than glibc (macOS, musl) these calls do
nothing.
"""
from __future__ import annotations

import ctypes
import gc
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
ARENA_MAX = 2  # malloc arenas for all threads (glibc's default: 8 per core)

try:
    _libc = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None
    _mallopt, _malloc_trim = _libc.mallopt, _libc.malloc_trim
except (OSError, AttributeError):  # not glibc
    _mallopt = _malloc_trim = None


def tune_malloc() -> bool:
    """At most ARENA_MAX malloc arenas from now on; True where glibc took it."""
    return _mallopt is not None and _mallopt(M_ARENA_MAX, ARENA_MAX) == 1


def settle() -> None:
    """Collect once, then move every object alive now (the modules, the app's blocks: half a million objects on a
    server) out of the garbage collector's reach for good (`gc.freeze`). Each later `trim` walks only what jobs
    and sessions made since: its collection took 0.3 s with the GIL held (every other request waiting), at the end
    of every job and every session, and takes milliseconds now. Frozen objects are still freed by reference
    counting; only a cycle among them would stay, and what is alive at the start lives as long as the server."""
    gc.collect()
    gc.freeze()


def trim() -> None:
    """Collect garbage, then hand the heaps' free pages back to the system (RSS falls; nothing else changes)."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
