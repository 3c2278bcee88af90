"""``python -m ingest.eval.timed_run OUT.json [--no-extract] -- INGEST RUN ARGS``: ``ingest run`` with stage clocks.

The throughput benchmark runs this in a child process so that peak memory is
the pass's own (``peak_rss``: its high-water mark since it started). It calls the
real ``ingest run`` (``ingest.cli.main``); the only change is that the stage
functions are wrapped with clocks. The pipeline overlaps fetching, extraction
and database writes inside a batch, so those are summed per call rather than
split from the batch's wall time: writes and archive as wall seconds, and
extraction (only where it runs in this process's threads: ``extract_processes=1``
or small batches) as thread CPU and wall seconds. Extraction in the process
pool is measured from outside, as the CPU of this process's descendants.
``--no-extract`` (with ``INGEST_EXTRACT_PROCESSES=1``) makes every page "not
extractable" so that a pass measures fetching and bookkeeping alone.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

_clock: defaultdict[str, float] = defaultdict(float)
_peaks: list[tuple[str, float]] = []  # (pipeline stage, peak MiB so far when it returned): which stage raised the peak
_lock = threading.Lock()


def _timed(name: str, func: Callable[..., Any], *, cpu: bool = False, peak: bool = False) -> Callable[..., Any]:
    """``func`` adding its wall seconds to ``name`` (its thread CPU seconds to ``name cpu``; with ``peak``,
    the process's peak memory so far after each call)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, used = time.perf_counter(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            with _lock:
                _clock[name] += time.perf_counter() - wall
                if peak:
                    _peaks.append((name, peak_rss()))
                if cpu:
                    _clock[name + " cpu"] += time.thread_time() - used

    return wrapper


def peak_rss() -> float:
    """This process's resident high-water mark in MiB: ``VmHWM``, which starts again at exec. Linux
    carries ``ru_maxrss`` over exec from the process image that forked it, so a pass started by a
    benchmark holding a 20,000-page site reported the benchmark's size (329 MiB) before doing anything."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc; KiB on Linux


def _not_extracted(*page: object) -> tuple[None, str]:
    return None, "extraction skipped (fetch-only benchmark pass)"


def install_clocks(*, extract: bool = True) -> dict[str, Any]:
    """Wrap the stages ``ingest run`` calls; returns a dict that receives the run's counts."""
    from ingest import archive, batch, pipeline
    from ingest import extract as extract_module

    captured: dict[str, Any] = {}
    for name in ("plan", "ingest_batch", "deduplicate"):
        setattr(pipeline, name, _timed(name, getattr(pipeline, name), peak=True))
    summarize = pipeline.summarize

    def keep_counts(*args: Any, **kwargs: Any) -> dict[str, int]:
        captured["counts"] = summarize(*args, **kwargs)
        return captured["counts"]

    pipeline.summarize = _timed("summarize", keep_counts)
    # Patched where it is defined too: a job for the extraction processes is pickled by name,
    # and pickle checks that the name still gives the function it was handed.
    extract_module.extract_body = batch.extract_body = _timed("extract", batch.extract_body if extract else _not_extracted, cpu=True)
    batch.BatchRunner._record_pages = _timed("store pages", batch.BatchRunner._record_pages)
    batch.BatchRunner._record_feed = _timed("store feeds", batch.BatchRunner._record_feed)
    archive.RawArchive.put = _timed("archive", archive.RawArchive.put)
    return captured


def main(argv: list[str]) -> int:
    out, rest = Path(argv[0]), argv[1:]
    extract = "--no-extract" not in rest[: rest.index("--")] if "--" in rest else True
    run_args = rest[rest.index("--") + 1:] if "--" in rest else rest
    captured = install_clocks(extract=extract)
    from ingest.cli import main as ingest

    started = time.perf_counter()
    code = ingest(["run", *run_args])
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.write_text(json.dumps({"exit": code, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mib": peak_rss(), "clock": dict(_clock), "peaks": _peaks,
                               "counts": captured.get("counts", {})}), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
