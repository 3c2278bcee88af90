"""The production files: the compose file validates offline and describes the topology the
distributed test runs natively; the image is the pinned Airflow with the pinned set."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker" / "docker-compose.yaml"
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "NEWS_DB_PASSWORD": "news-secret", "AIRFLOW_FERNET_KEY": "fernet",
           "AIRFLOW_JWT_SECRET": "jwt-secret", "AIRFLOW_ADMIN_PASSWORD": "admin-secret"}
AIRFLOW_SERVICES = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker"}


def docker_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (.ci/run installs Debian's package)")
        pytest.skip("docker-compose is not installed: apt-get install --no-install-recommends docker-compose")
    return subprocess.run([exe, "-f", str(COMPOSE), *args], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=120)


def resolved() -> dict[str, Any]:
    """The file as Compose sees it: `docker-compose config` output, anchors merged and variables filled."""
    done = docker_compose("config", env=SECRETS)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_file_validates_offline() -> None:
    done = docker_compose("config", "-q", env=SECRETS)
    assert done.returncode == 0, done.stderr


def test_compose_refuses_to_start_without_its_secrets() -> None:
    done = docker_compose("config", "-q", env={k: v for k, v in SECRETS.items() if k != "AIRFLOW_JWT_SECRET"})
    assert done.returncode != 0
    assert "AIRFLOW_JWT_SECRET" in done.stderr


def test_every_airflow_service_shares_one_environment() -> None:
    services = resolved()["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis"} <= set(services)
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == SECRETS["AIRFLOW_JWT_SECRET"], name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow"), name
        assert env["INGEST_DB_URL"].endswith("@postgres/news"), "the store is a database of its own"
        assert env["INGEST_ALLOW_PRIVATE_NETWORKS"] == "false", "the SSRF guard stays on in production"
        mounts = {target: source for source, target, *_ in (v.split(":") for v in services[name]["volumes"])}
        assert mounts[env["INGEST_RAW_STORE"]] == "raw-archive", f"{name} must see the shared raw archive"
    worker = services["airflow-worker"]
    assert worker["command"] == "celery worker"
    assert worker["deploy"]["replicas"] >= 1
    assert (REPO / "docker" / "initdb" / "10-news-store.sh").exists()
    assert "/opt/airflow/dags/pools.json" in "".join(services["airflow-init"]["command"])
    assert (REPO / "dags" / "pools.json").exists()


def test_image_is_the_pinned_airflow_with_the_pinned_set() -> None:
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "constraints.txt").read_text(), re.M)
    assert pinned is not None
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned.group(1))}-python3\.11$", dockerfile, re.M)
    assert "USER airflow" in dockerfile and "-c /opt/news-ingest/constraints.txt" in dockerfile
