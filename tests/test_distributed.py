"""The production topology, for real, on this machine: CeleryExecutor with two workers,
Airflow's metadata in PostgreSQL, the broker in Redis, the news store in PostgreSQL.

A run triggered through the REST API spreads its tasks over both workers and stores the
sample site exactly as the single-process runs do. Then a worker is killed with SIGKILL
in the middle of a task: the scheduler notices the lost heartbeat, the task is retried on
the surviving worker, and nothing is lost or stored twice."""

from __future__ import annotations

import os
import signal
import socket
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ingest.local_airflow import finished, trigger, wait_for
from ingest.sample_site import SampleSite
from tests.airflow_server import CeleryCluster, airflow_celery
from tests.conftest import pg_databases
from tests.local_http import LocalServer, Request
from tests.test_pipeline import check_sample_site_store, exported, table_counts

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REDIS = ("127.0.0.1", 6379)
SLOW_SECONDS = 8.0  # the page answers after this long (under the read timeout): time to kill the worker mid-fetch
PAGE = ("<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        "<p>Harbor officials said on Tuesday that the {title} would be reviewed by an independent panel "
        "before the end of the year, after residents raised concerns about noise and traffic.</p>"
        "<p>The panel is expected to publish its findings in the spring, and the council has promised a "
        "public hearing before any construction begins on the waterfront site.</p></article></body></html>")


def redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def databases(pg_server: str) -> Iterator[tuple[str, str]]:
    """Airflow's metadata database and the news store: two new PostgreSQL databases."""
    with pg_databases(pg_server, "airflow", "news") as (metadata, news):
        yield metadata, news


@pytest.fixture(scope="module")
def cluster(sample_site: SampleSite, databases: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryCluster]:
    if not redis_answers():
        message = f"no Redis answers at {REDIS[0]}:{REDIS[1]} (.ci/run starts it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    home = tmp_path_factory.mktemp("celery")
    metadata_url, news_url = databases
    env = {
        "INGEST_FEEDS_FILE": str(sample_site.write_feeds_file(home / "feeds.yaml")),
        "INGEST_DB_URL": news_url,
        "INGEST_RAW_STORE": str(home / "raw"),
        "INGEST_ALLOW_PRIVATE_NETWORKS": "1",
        "INGEST_FEED_BATCH_SIZE": "1",  # one mapped task per feed: work for both workers
        # A worker killed mid-task is noticed after this long without a heartbeat.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }
    with airflow_celery(home / "airflow", env, metadata_url, f"redis://{REDIS[0]}:{REDIS[1]}/0") as running:
        yield running


def task_instances(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    return list(answer.json()["task_instances"])


def test_a_run_spreads_over_both_workers_and_stores_the_site(cluster: CeleryCluster, sample_site: SampleSite,
                                                             databases: tuple[str, str]) -> None:
    with cluster.client() as client:
        run_id = trigger(client, {})
        assert finished(client, run_id, cluster.log) == "success"
        tis = task_instances(client, run_id)
    ran = Counter(ti["hostname"] for ti in tis if ti["state"] == "success")
    assert set(ran) == set(cluster.workers), f"tasks ran on {dict(ran)}; both workers must take part"
    batches = [ti for ti in tis if ti["task_id"] == "ingest_batch"]
    assert len(batches) == len(sample_site.feeds) and all(ti["state"] == "success" for ti in batches)
    check_sample_site_store(exported(databases[1]), sample_site.base_url)


def test_a_worker_killed_mid_task_loses_nothing(cluster: CeleryCluster, sample_site: SampleSite,
                                                databases: tuple[str, str]) -> None:
    news_url = databases[1]
    before = {r["url"]: r for r in exported(news_url)}
    with LocalServer() as slow:
        def page(request: Request) -> tuple[int, dict[str, str], list[bytes | float]]:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, [SLOW_SECONDS, PAGE.format(title=request.path[1:]).encode()]

        paths = [f"/ferry-terminal-{n}" for n in (1, 2)]
        for path in paths:
            slow.route(path, page)
        urls = [slow.url(path) for path in paths]
        with cluster.client() as client:
            run_id = trigger(client, {"urls": urls})

            def running_batch() -> dict[str, Any] | None:
                return next((ti for ti in task_instances(client, run_id)
                             if ti["task_id"] == "ingest_batch" and ti["state"] == "running" and ti["hostname"]), None)

            victim = wait_for(lambda: running_batch() if slow.requests else None, 120, "the batch to be fetching", cluster.log)
            killed = victim["hostname"]
            os.killpg(cluster.workers[killed].pid, signal.SIGKILL)
            cluster.workers[killed].wait()
            assert finished(client, run_id, cluster.log, timeout=900) == "success"
            batch = next(ti for ti in task_instances(client, run_id) if ti["task_id"] == "ingest_batch")
        assert batch["try_number"] >= 2 and batch["hostname"] != killed, "the task was retried on the surviving worker"
    after = {r["url"]: r for r in exported(news_url)}
    assert set(after) == set(before) | set(urls), "both pages stored, nothing else"
    assert {u: after[u] for u in before} == before, "what was stored before is untouched"
    counts = table_counts(news_url)
    assert counts["articles"] == len(after), "nothing stored twice"
    check_sample_site_store([r for r in after.values() if r["url"] not in urls], sample_site.base_url)
