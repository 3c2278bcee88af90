"""The extraction processes' pool (``ingest.process_pool``)."""

from __future__ import annotations

import gc

from ingest.process_pool import process_pool


def test_workers_keep_the_preloaded_modules_out_of_the_collector() -> None:
    """A worker's full garbage collections must not write to the objects it shares with the
    forkserver: at 20,000 pages that copied 15 MiB of shared pages into the two workers."""
    pool = process_pool(1, preload=["ingest.extract"])
    assert pool is not None
    try:
        frozen = pool.submit(gc.get_freeze_count).result(timeout=120)
    finally:
        pool.shutdown()
    assert frozen > 10_000  # the modules trafilatura and lxml bring, not a handful
