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


@contextmanager
def airflow_standalone(home: Path, ingest_env: dict[str, str]) -> Iterator[AirflowServer]:
    """Migrate, import the pools, parse and unpause news_ingest, then start standalone.

    The scheduler creates no scheduled runs (use_job_schedule off), so what runs is
    only what a test creates: backfills, triggered runs."""
    port = free_port()
    env = airflow_env(home, {
        **ingest_env,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(32).hex(),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    })
    home.mkdir(parents=True, exist_ok=True)
    log = home / "standalone.log"
    _airflow(["db", "migrate"], env, log)
    _airflow(["pools", "import", str(DAGS / "pools.json")], env, log)
    _airflow(["dags", "reserialize"], env, log)
    _airflow(["dags", "unpause", "news_ingest"], env, log)
    with log.open("a") as out:
        process = subprocess.Popen([shutil.which("airflow", path=env["PATH"]) or "airflow", "standalone"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"airflow standalone exited ({process.returncode}); see {log}")
            try:
                health = httpx.get(f"{url}/api/v2/monitor/health", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return False
            return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

        wait_for(healthy, 180, "airflow standalone to report healthy", log)
        passwords = home / "simple_auth_manager_passwords.json.generated"
        yield AirflowServer(url, json.loads(passwords.read_text())["admin"], env, log)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
