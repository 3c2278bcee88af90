"""Throughput of a whole ``ingest run`` on the load site, beside an extraction-only baseline.

Each pass is ``ingest run`` in its own process (``ingest.eval.timed_run``) into a
fresh SQLite store, so its wall time, stage clocks and peak memory are its own;
the extraction processes it starts are sampled from outside (``TreeSampler``).
The baseline is what the pass can at best approach: plain ``trafilatura.extract``
over the same pages read from disk, on every core, with nothing fetched,
deduplicated or stored.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ingest.load_site import LoadConfig, build, serve


@dataclass(frozen=True)
class PassResult:
    """One timed ``ingest run``: wall and CPU seconds, peak memory, stage clocks (seconds) and the run's counts."""

    name: str
    wall: float
    cpu: float  # the pass's own process
    peak_mib: float  # the pass's own process (its high-water mark, ``timed_run.peak_rss``)
    tree_peak_mib: float  # the pass and its extraction processes together (sampled PSS sum)
    workers_cpu: float  # CPU seconds of the extraction processes
    clock: dict[str, float]
    counts: dict[str, int]
    peaks: list[tuple[str, float]]  # the main process's peak MiB after each pipeline stage, in order

    @property
    def stored(self) -> int:
        return self.counts.get("articles_stored", 0)


@dataclass
class Throughput:
    config: LoadConfig
    feeds: int
    passes: list[PassResult] = field(default_factory=list)
    baselines: list[tuple[float, float]] = field(default_factory=list)  # (wall, CPU seconds) before the passes and after them
    baseline_workers: int = 0
    served: dict[str, int] = field(default_factory=dict)

    @property
    def baseline_seconds(self) -> float:
        """The baseline's wall time, the mean of a run before the passes and one after them: this
        machine's speed drifts by tens of percent within minutes, and a baseline measured only
        before or only after the first pass tilted the ratio with it."""
        return sum(wall for wall, _ in self.baselines) / len(self.baselines)

    @property
    def baseline_cpu(self) -> float:
        return sum(cpu for _, cpu in self.baselines) / len(self.baselines)


def _env(folder: Path, name: str) -> dict[str, str]:
    """The pass's settings: a fresh store and archive; the caller's other INGEST_* settings pass through."""
    return {**os.environ, "INGEST_ALLOW_PRIVATE_NETWORKS": "1", "INGEST_DB_URL": f"sqlite:///{folder / name}.db",
            "INGEST_RAW_STORE": str(folder / f"{name}-raw")}


class TreeSampler:
    """Polls a process and its descendants (the extraction pool's workers) for their summed memory and CPU.

    Memory is PSS (a page shared by n processes counts 1/n in each), so processes forked
    from one parent, as Airflow's executor workers and tasks are, are not counted n times.

    ``ru_maxrss`` only sees one process, and a pool's workers are not even the pass's own children
    (forkserver starts them), so the pass's memory and extraction CPU are read from outside.

    A sample is not free: the kernel walks a process's page tables for its PSS (3.5 ms for 200 MiB),
    so sampling four processes every 0.1 s took a tenth of a core from the pass it measured."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0  # bytes, summed PSS
        self.peak_single = 0  # the largest one process reached
        self.cpu: dict[int, float] = {}  # pid -> last seen user+system seconds
        self.start_cpu: dict[int, float] = {}  # the same when the measurement began (``cpu_used`` counts from there)

    def sample(self) -> None:
        total = 0
        for proc in [self.root, *self._descendants()]:
            try:
                with proc.oneshot():
                    pss = proc.memory_full_info().pss
                    total += pss
                    self.peak_single = max(self.peak_single, pss)
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
            except psutil.Error:
                continue
        self.peak = max(self.peak, total)

    def _descendants(self) -> list[psutil.Process]:
        try:
            return self.root.children(recursive=True)
        except psutil.Error:
            return []

    @contextmanager
    def sampling(self) -> Iterator[TreeSampler]:
        """Sample every ``interval`` in a thread while the block runs; ``cpu_used`` counts from its start."""
        self.sample()
        self.start_cpu = dict(self.cpu)
        done = threading.Event()

        def follow() -> None:
            while not done.wait(self.interval):
                self.sample()

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            done.set()
            thread.join()

    @property
    def cpu_used(self) -> float:
        """CPU seconds of the whole tree since ``start_cpu`` (a process that ends between two samples loses
        its last ``interval``)."""
        return sum(cpu - self.start_cpu.get(pid, 0.0) for pid, cpu in self.cpu.items())

    @property
    def descendants_cpu(self) -> float:
        return sum(cpu for pid, cpu in self.cpu.items() if pid != self.root.pid)


def timed_pass(name: str, feeds: Path, folder: Path, store: str, *, extract: bool = True) -> PassResult:
    """``ingest run --feeds FEEDS`` in a child process against the store named ``store`` in ``folder``."""
    out = folder / f"{name.replace(' ', '-')}.json"
    flags = [] if extract else ["--no-extract"]
    command = [sys.executable, "-m", "ingest.eval.timed_run", str(out), *flags, "--", "--feeds", str(feeds)]
    env = _env(folder, store) | ({} if extract else {"INGEST_EXTRACT_PROCESSES": "1"})
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as popen:
        with TreeSampler(popen.pid).sampling() as sampler:
            _, errors = popen.communicate()
    if not out.exists():
        raise RuntimeError(f"{name}: ingest run failed ({popen.returncode}): {errors[-2000:]}")
    data = json.loads(out.read_text(encoding="utf-8"))
    return PassResult(name, data["wall"], data["cpu"], data["peak_mib"], sampler.peak / 2**20, sampler.descendants_cpu,
                      data["clock"], data["counts"], [(str(stage), float(mib)) for stage, mib in data["peaks"]])


def _warm() -> None:
    import trafilatura  # noqa: F401 - imported once per worker before the clock starts


def _extract_file(path: str) -> int:
    import trafilatura

    text = trafilatura.extract(Path(path).read_text(encoding="utf-8"))
    return len(text or "")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def extraction_baseline(pages: list[Path], workers: int) -> tuple[float, float]:
    """Wall seconds for plain ``trafilatura.extract`` over ``pages`` on ``workers`` processes (started and warm
    beforehand), and the CPU seconds the workers used in all (which other load on the machine does not inflate)."""
    cpu = _children_cpu()
    with ProcessPoolExecutor(workers, initializer=_warm) as pool:
        list(pool.map(_extract_file, [str(pages[0])] * workers))  # every worker up and past its first page
        started = time.perf_counter()
        list(pool.map(_extract_file, [str(p) for p in pages], chunksize=max(1, len(pages) // (workers * 16))))
        wall = time.perf_counter() - started
    return wall, _children_cpu() - cpu


def measure(config: LoadConfig, *, fetch_only: bool = True, workers: int | None = None) -> Throughput:
    """Serve the load site, run the passes between two runs of the baseline over the same pages written to disk."""
    with tempfile.TemporaryDirectory(prefix="ingest-throughput-") as tmp, serve(build(config)) as site:
        folder = Path(tmp)
        feeds = site.write_feeds_file(folder / "feeds.yaml")
        pages = site.write_pages(folder / "pages")
        result = Throughput(config, len(site.feed_urls()))
        result.baseline_workers = workers or os.cpu_count() or 1
        result.baselines.append(extraction_baseline(pages, result.baseline_workers))
        result.passes.append(timed_pass("first pass (all new)", feeds, folder, "news"))
        result.passes.append(timed_pass("second pass (feeds 304)", feeds, folder, "news"))
        if fetch_only:
            result.passes.append(timed_pass("fetch-only pass (no extraction)", feeds, folder, "fetch-only", extract=False))
        result.baselines.append(extraction_baseline(pages, result.baseline_workers))
        result.served = dict(site.counts)
    return result
