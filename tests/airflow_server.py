"""A real ``airflow standalone`` (scheduler, dag-processor, API server, triggerer) on a
temporary AIRFLOW_HOME and a free port, for the integration tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ingest.demo import DAGS, _airflow, airflow_env


@dataclass
class AirflowServer:
    url: str
    password: str
    env: dict[str, str]
    log: Path

    def client(self) -> httpx.Client:
        """A REST client logged in as admin."""
        token = httpx.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30)
        token.raise_for_status()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=30)

    def cli(self, *args: str) -> str:
        done = subprocess.run([shutil.which("airflow", path=self.env["PATH"]) or "airflow", *args], env=self.env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def trigger(client: httpx.Client, conf: dict[str, Any]) -> str:
    """A manual run of news_ingest through the REST API; its run id."""
    created = client.post("/api/v2/dags/news_ingest/dagRuns", json={"logical_date": None, "conf": conf})
    assert created.status_code == 200, created.text
    return str(created.json()["dag_run_id"])


def finished(client: httpx.Client, run_id: str, log: Path, timeout: float = 600) -> str:
    """Wait for the run to end; its final state."""
    return str(wait_for(lambda: (state := client.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}").json()["state"])
                        in ("success", "failed") and state, timeout, f"run {run_id}", log))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:]) if log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n--- {log} ---\n{tail}")


def _prepare(home: Path, env: dict[str, str]) -> Path:
    """Migrate, import the pools, parse and unpause news_ingest: what `make airflow` does first."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "airflow.log"
    _airflow(["db", "migrate"], env, log)
    _airflow(["pools", "import", str(DAGS / "pools.json")], env, log)
    _airflow(["dags", "reserialize"], env, log)
    _airflow(["dags", "unpause", "news_ingest"], env, log)
    return log


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("a") as out:
        return subprocess.Popen([shutil.which("airflow", path=env["PATH"]) or "airflow", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the process group (Airflow components start children), then reap it."""
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=60)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _server_env(home: Path, ingest_env: dict[str, str], extra: dict[str, str]) -> tuple[str, dict[str, str]]:
    """An API server on a free loopback port, the scheduler creating no runs of its own
    (use_job_schedule off: what runs is what a test creates), one JWT secret for all."""
    port = free_port()
    return f"http://127.0.0.1:{port}", airflow_env(home, {
        **ingest_env,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(32).hex(),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **extra,
    })


def _wait_healthy(url: str, processes: list[subprocess.Popen[bytes]], parts: tuple[str, ...], log: Path) -> None:
    def healthy() -> bool:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"`{' '.join(map(str, process.args))}` exited ({process.returncode}); see {log}")  # type: ignore[arg-type]
        try:
            health = httpx.get(f"{url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        return all(health.get(part, {}).get("status") == "healthy" for part in parts)

    wait_for(healthy, 180, f"Airflow to report {', '.join(parts)} healthy", log)


def _metadata(url: str) -> dict[str, str]:
    # psycopg 3 drives the async engine too (Airflow would pick asyncpg for it otherwise).
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url}


def _password(home: Path) -> str:
    return str(json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"])


@contextmanager
def airflow_standalone(home: Path, ingest_env: dict[str, str], metadata_url: str) -> Iterator[AirflowServer]:
    """`airflow standalone` (LocalExecutor) after the project's own setup, its metadata in
    PostgreSQL: on SQLite, Airflow refuses a backfill ("Database is locked") or a trigger
    whenever the scheduler happens to be writing."""
    url, env = _server_env(home, ingest_env, _metadata(metadata_url))
    log = _prepare(home, env)
    process = _start(["standalone"], env, log)
    try:
        _wait_healthy(url, [process], ("metadatabase", "scheduler"), log)
        yield AirflowServer(url, _password(home), env, log)
    finally:
        stop(process)


@dataclass
class CeleryCluster(AirflowServer):
    workers: dict[str, subprocess.Popen[bytes]]
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
    url, env = _server_env(home, ingest_env, {
        **_metadata(metadata_url),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
    })
    log = _prepare(home, env)
    processes = [_start(["api-server"], env, log), _start(["scheduler"], env, log), _start(["dag-processor"], env, log)]
    named: dict[str, subprocess.Popen[bytes]] = {}
    try:
        _wait_healthy(url, processes, ("metadatabase", "scheduler", "dag_processor"), log)
        for number in range(1, workers + 1):
            name = f"worker{number}"
            worker_log = home / f"{name}.log"
            worker_env = {**env, "INGEST_TEST_WORKER": name, "PYTHONPATH": str(DAGS.parent),
                          "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.worker_hostname.hostname",
                          "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            named[name] = _start(["celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", queue,
                                  "--concurrency", "1"], worker_env, worker_log)
            processes.append(named[name])
            wait_for(lambda: f"{name}@" in (text := worker_log.read_text(errors="replace")) and " ready." in text,
                     120, f"celery {name} to be ready", worker_log)
        yield CeleryCluster(url, _password(home), env, log, named)
    finally:
        for process in reversed(processes):
            stop(process)
