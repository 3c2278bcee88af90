"""Handing the memory a finished stage freed back to the system.

glibc keeps what a process frees for reuse, in one arena per thread that
allocated it. ``ingest run`` runs its stages in one process: the batch stage's
threads leave their arenas holding tens of MiB of freed pages (page bodies,
parsed feeds, connection caches) that deduplication, in the main thread, never
reuses, so its peak came on top of them. ``malloc_trim`` returns them; measured on
a 20,000-article pass, the dedup stage's peak fell from 403 to 282 MiB.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (AttributeError, OSError):  # not glibc (musl, macOS): nothing to do
        return None


def release_freed() -> None:
    """Return the freed pages of every arena to the system (glibc; elsewhere a no-op)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
