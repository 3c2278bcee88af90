"""A real Airflow on this machine, driven through its command line and REST API.

``make demo`` and ``make airflow`` prepare one from here, the Airflow scale
benchmark (``python -m ingest.eval airflow``) runs ``news_ingest`` on one, and
the integration tests start one per test. Airflow runs in its own processes, so
this package still imports nothing from it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

DAGS = Path(__file__).resolve().parents[1] / "dags"
T = TypeVar("T")


def airflow_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """Environment for Airflow commands: our own home, our dags and plugins folders, no examples."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(DAGS / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra,
    }


def executable(env: dict[str, str]) -> str:
    """The ``airflow`` command on the environment's PATH (the venv's, put first by ``airflow_env``)."""
    return shutil.which("airflow", path=env["PATH"]) or "airflow"


def airflow(args: list[str], env: dict[str, str], log: Path) -> None:
    """Run one ``airflow`` command, its output appended to ``log``; on failure, exit with the log's tail."""
    with log.open("a") as handle:
        done = subprocess.run([executable(env), *args], env=env, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"{tail}\n`airflow {' '.join(args)}` failed (exit {done.returncode}); full log: {log}")


def prepare(home: Path, env: dict[str, str], log: Path | None = None) -> Path:
    """Migrate, import the pools, parse and unpause news_ingest; the log's path (default: in ``home``)."""
    home.mkdir(parents=True, exist_ok=True)
    log = log or home / "airflow.log"
    airflow(["db", "migrate"], env, log)
    airflow(["pools", "import", str(DAGS / "pools.json")], env, log)
    airflow(["dags", "reserialize"], env, log)
    airflow(["dags", "unpause", "news_ingest"], env, log)
    return log


@dataclass
class AirflowServer:
    url: str
    password: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None  # `airflow standalone` (its children are the components and tasks)

    def client(self) -> httpx.Client:
        """A REST client logged in as admin."""
        token = httpx.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30)
        token.raise_for_status()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=30)


def trigger(client: httpx.Client, conf: dict[str, Any]) -> str:
    """A manual run of news_ingest through the REST API; its run id."""
    created = client.post("/api/v2/dags/news_ingest/dagRuns", json={"logical_date": None, "conf": conf})
    if created.status_code != 200:
        raise RuntimeError(f"could not trigger news_ingest: {created.status_code} {created.text}")
    return str(created.json()["dag_run_id"])


def finished(client: httpx.Client, run_id: str, log: Path, timeout: float = 600) -> str:
    """Wait for the run to end; its final state."""
    return str(wait_for(lambda: (state := client.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}").json()["state"])
                        in ("success", "failed") and state, timeout, f"run {run_id}", log))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T], timeout: float, what: str, log: Path) -> T:
    """Poll ``check`` every second until it returns something true; on timeout, raise with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:]) if log.exists() else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n--- {log} ---\n{tail}")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """An Airflow component in a process group of its own (``stop`` signals the group)."""
    with log.open("a") as out:
        return subprocess.Popen([executable(env), *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


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


def server_env(home: Path, ingest_env: dict[str, str], extra: dict[str, str]) -> tuple[str, dict[str, str]]:
    """An API server on a free loopback port, the scheduler creating no runs of its own
    (use_job_schedule off: what runs is what the caller triggers), one JWT secret for all."""
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


def wait_healthy(url: str, processes: list[subprocess.Popen[bytes]], parts: tuple[str, ...], log: Path) -> None:
    def healthy() -> bool:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"`{' '.join(map(str, process.args))}` exited ({process.returncode}); see {log}")  # type: ignore[arg-type]
        try:
            health = httpx.get(f"{url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        return all(health.get(part, {}).get("status") == "healthy" for part in parts)

    wait_for(healthy, 180, f"Airflow to report {', '.join(parts)} healthy", log)


def metadata(url: str) -> dict[str, str]:
    """Airflow's metadata database; psycopg 3 drives the async engine too (Airflow would pick asyncpg for it otherwise)."""
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url}


def admin_password(home: Path) -> str:
    return str(json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"])


@contextmanager
def airflow_standalone(home: Path, ingest_env: dict[str, str], metadata_url: str,
                       extra: dict[str, str] | None = None) -> Iterator[AirflowServer]:
    """`airflow standalone` (LocalExecutor) after the project's own setup, its metadata in
    PostgreSQL: on SQLite, Airflow refuses a backfill ("Database is locked") or a trigger
    whenever the scheduler happens to be writing."""
    url, env = server_env(home, ingest_env, {**metadata(metadata_url), **(extra or {})})
    log = prepare(home, env)
    process = start(["standalone"], env, log)
    try:
        wait_healthy(url, [process], ("metadatabase", "scheduler"), log)
        yield AirflowServer(url, admin_password(home), env, log, process)
    finally:
        stop(process)
