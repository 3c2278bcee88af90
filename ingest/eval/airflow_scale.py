"""``news_ingest`` at scale under a real ``airflow standalone`` (LocalExecutor) on the load site.

Airflow's metadata and the news store each get a scratch PostgreSQL database;
the load site holds its newest pages back for the first run and publishes them
before the second, so the second run finds most feeds unchanged (304) and a few
with new articles, as a scheduled run half an hour later would. Each run is
triggered through the REST API and read back from it: the run's wall time, how
many task instances it made, and how long they waited in queued.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from statistics import median

from sqlalchemy import select, text

from ingest.db import open_store, scratch_database, session_factory
from ingest.eval.throughput import TreeSampler
from ingest.load_site import LoadConfig, build, serve
from ingest.local_airflow import AirflowServer, airflow_standalone, finished, trigger
from ingest.models import Run


@dataclass(frozen=True)
class TaskTiming:
    task_id: str
    map_index: int
    state: str
    queued_s: float  # queued -> running: the time the executor took to start it
    run_s: float


@dataclass(frozen=True)
class RunResult:
    name: str
    state: str
    wall_s: float  # the run's start to its end, as Airflow records them
    tasks: list[TaskTiming]
    counts: dict[str, int]
    peak_mib: float  # every Airflow process and task together (sampled PSS sum)
    task_peak_mib: float  # the largest single process
    cpu_s: float  # CPU seconds of every Airflow process during the run: capacity per core, whatever else ran

    @property
    def batches(self) -> list[TaskTiming]:
        return [t for t in self.tasks if t.task_id == "ingest_batch"]

    @property
    def queued(self) -> list[float]:
        return sorted(t.queued_s for t in self.tasks)

    def queued_summary(self) -> str:
        waits = self.queued
        return f"median {median(waits):.1f} s, max {waits[-1]:.1f} s, sum {sum(waits):.0f} s" if waits else "-"


@dataclass
class AirflowScale:
    config: LoadConfig
    feeds: int
    fresh: int  # articles published between the runs
    changed_feeds: int
    runs: list[RunResult] = field(default_factory=list)
    store_bytes: int = 0  # the news database after both runs
    archive_bytes: int = 0  # the raw archive (compressed pages and feeds)


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def timed_run(server: AirflowServer, name: str, store_url: str, timeout: float) -> RunResult:
    """Trigger ``news_ingest``, wait for it, and read its timings from Airflow and its counts from the store."""
    assert server.process is not None  # the standalone process: its tree is every component, task and extraction process
    with server.client() as client, TreeSampler(server.process.pid, interval=0.5).sampling() as sampler:
        run_id = trigger(client, {})
        state = finished(client, run_id, server.log, timeout)
        run = client.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}").json()
        listed = client.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances", params={"limit": 1000}).json()
    tasks = [TaskTiming(ti["task_id"], ti["map_index"], ti["state"] or "none", _seconds(ti.get("queued_when"), ti.get("start_date")),
                        _seconds(ti.get("start_date"), ti.get("end_date"))) for ti in listed["task_instances"]]
    with session_factory(open_store(store_url))() as session:
        stored = session.scalars(select(Run).where(Run.run_id == run_id)).one_or_none()
    return RunResult(name, state, _seconds(run.get("start_date"), run.get("end_date")), tasks, dict(stored.stats) if stored else {},
                     sampler.peak / 2**20, sampler.peak_single / 2**20, sampler.cpu_used)


def measure(config: LoadConfig, pg_admin_url: str, *, fresh: int, timeout: float = 3600,
            settings: dict[str, str] | None = None) -> AirflowScale:
    """Serve the load site with the newest ``fresh`` articles held back, run news_ingest, publish them, run it again."""
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ingest-airflow-scale-")))
        metadata_url = stack.enter_context(scratch_database(pg_admin_url, "ingest_scale_airflow"))
        store_url = stack.enter_context(scratch_database(pg_admin_url, "ingest_scale_news"))
        site = stack.enter_context(serve(build(config)))
        site.published = config.articles - fresh
        feeds_file = site.write_feeds_file(folder / "feeds.yaml")
        ingest_env = {"INGEST_FEEDS_FILE": str(feeds_file), "INGEST_DB_URL": store_url, "INGEST_RAW_STORE": str(folder / "raw"),
                      "INGEST_ALLOW_PRIVATE_NETWORKS": "1", **(settings or {})}
        server = stack.enter_context(airflow_standalone(folder / "airflow", ingest_env, metadata_url))
        changed = {(page.host, page.feed) for page in site.model.pages if page.id >= site.published}
        result = AirflowScale(config, len(site.feed_urls()), fresh, len(changed))
        result.runs.append(timed_run(server, "first run (all new)", store_url, timeout))
        site.published = config.articles
        result.runs.append(timed_run(server, f"second run ({fresh} new articles)", store_url, timeout))
        with open_store(store_url).connect() as connection:
            result.store_bytes = int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
        result.archive_bytes = sum(path.stat().st_size for path in (folder / "raw").rglob("*") if path.is_file())
        open_store(store_url).dispose()
        open_store.cache_clear()
    return result
