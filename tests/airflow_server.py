"""The Celery topology for the distributed test; the standalone server and the helpers
to trigger and wait for runs are ``ingest.local_airflow``'s."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ingest.local_airflow import (
    DAGS, AirflowServer, admin_password, free_port, metadata, prepare, server_env, start, stop, wait_for, wait_healthy,
)


@dataclass
class CeleryCluster(AirflowServer):
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    """Celery workers by the host name their task instances report."""


@contextmanager
def airflow_celery(home: Path, ingest_env: dict[str, str], metadata_url: str, broker_url: str,
                   workers: int = 2) -> Iterator[CeleryCluster]:
    """The production topology on one machine: CeleryExecutor, metadata in PostgreSQL, broker
    in Redis, and the API server, scheduler, dag-processor and Celery workers as separate
    processes. Each worker reports its own host name (``[core] hostname_callable``), so a
    test can tell which worker ran a task. A queue of its own keeps this cluster's tasks
    away from any other user of the broker."""
    queue = f"news_ingest_{os.urandom(4).hex()}"
    url, env = server_env(home, ingest_env, {
        **metadata(metadata_url),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
    })
    log = prepare(home, env)
    processes = [start(["api-server"], env, log), start(["scheduler"], env, log), start(["dag-processor"], env, log)]
    named: dict[str, subprocess.Popen[bytes]] = {}
    try:
        wait_healthy(url, processes, ("metadatabase", "scheduler", "dag_processor"), log)
        for number in range(1, workers + 1):
            name = f"worker{number}"
            worker_log = home / f"{name}.log"
            worker_env = {**env, "INGEST_TEST_WORKER": name, "PYTHONPATH": str(DAGS.parent),
                          "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.worker_hostname.hostname",
                          "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            named[name] = start(["celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", queue,
                                 "--concurrency", "1"], worker_env, worker_log)
            processes.append(named[name])
            wait_for(lambda: f"{name}@" in (text := worker_log.read_text(errors="replace")) and " ready." in text,
                     120, f"celery {name} to be ready", worker_log)
        yield CeleryCluster(url, admin_password(home), env, log, workers=named)
    finally:
        for process in reversed(processes):
            stop(process)
