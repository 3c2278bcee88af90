"""Shared fixtures: the sample site, a news store per test (SQLite or PostgreSQL), settings.

Airflow reads its configuration when first imported, so its environment is set
here, before any test module imports it: a throwaway AIRFLOW_HOME with its own
SQLite metadata database and this repository's dags folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ingest-airflow-"))
os.environ.update(
    AIRFLOW_HOME=str(_AIRFLOW_HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "dags" / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
    AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
)
# read before the INGEST_* variables are cleared below
PG_ADMIN_URL = os.environ.get("INGEST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
for name in [n for n in os.environ if n.startswith("INGEST_")]:
    del os.environ[name]  # a developer's own settings must not leak into the tests

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402

from ingest.db import scratch_database  # noqa: E402
from ingest.sample_site import SampleSite, serve  # noqa: E402
from ingest.settings import HttpSettings, Settings  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A new Airflow metadata database in the session's AIRFLOW_HOME (above)."""
    from airflow.utils.db import resetdb

    resetdb()


@pytest.fixture(scope="session")
def sample_site() -> Iterator[SampleSite]:
    with serve() as site:
        yield site


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Admin URL of the PostgreSQL server, or skip when none answers."""
    try:
        with create_engine(PG_ADMIN_URL).connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}: {str(exc.orig).splitlines()[0]}")
    return PG_ADMIN_URL


@contextmanager
def pg_databases(admin_url: str, *kinds: str) -> Iterator[list[str]]:
    """New PostgreSQL databases, one per kind, dropped afterwards, so no run sees another's rows."""
    with ExitStack() as stack:
        yield [stack.enter_context(scratch_database(admin_url, f"ingest_test_{kind}")) for kind in kinds]


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh database for one test."""
    with pg_databases(pg_server, "store") as (url,):
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'news.db'}"
    return request.getfixturevalue("pg_url")


def make_settings(tmp_path: Path, db_url: str, feeds_file: Path | None = None, **overrides: object) -> Settings:
    """Settings for a test: its own store and archive, loopback allowed, quick HTTP."""
    return Settings(
        db_url=db_url,
        feeds_file=feeds_file or tmp_path / "feeds.yaml",
        raw_store=str(tmp_path / "raw"),
        allow_private_networks=True,
        http=HttpSettings(connect_timeout=2, read_timeout=2, total_timeout=10, retries=1, retry_backoff=0.05, max_retry_wait=1),
        **overrides,  # type: ignore[arg-type]
    )
