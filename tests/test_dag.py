"""The news_ingest DAG: its shape, and whole runs with ``dag.test()`` against the sample site."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.sample_site import SampleSite
from tests.conftest import REPO
from tests.test_pipeline import check_sample_site_store, exported, table_counts


@pytest.fixture(scope="module")
def dag(airflow_db: None):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag("news_ingest")


def test_dag_shape(dag) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk import CronDataIntervalTimetable

    assert isinstance(dag.timetable, CronDataIntervalTimetable), "real data intervals, for backfills"
    assert set(dag.task_ids) == {"plan", "ingest_batch", "reextract", "deduplicate", "summarize", "fail_run"}
    for task in dag.tasks:
        if task.task_id == "fail_run":
            continue
        assert task.retries == 3
        assert task.retry_exponential_backoff == 2.0, "a multiplier: True would mean no back-off in Airflow 3"
    dedup = dag.get_task("deduplicate")
    assert dedup.pool == "ingest_dedup" and dedup.max_active_tis_per_dag == 1
    assert dedup.upstream_task_ids == {"ingest_batch", "reextract"}
    assert [a.uri for a in dedup.outlets] == ["x-news-ingest://articles"]
    assert dag.max_active_runs == 1
    assert set(dag.params) == {"feeds", "urls", "reextract_only", "reextract_since", "dry_run"}


def test_dag_file_stays_thin() -> None:
    """Parsing the DAG file must not import the pipeline (no heavy work at top level)."""
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('ingest.pipeline', 'trafilatura', 'datasketch') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(REPO / "dags" / "news_ingest.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_pipeline_leaves_datasketch_unimported() -> None:
    """datasketch brings SciPy and redis (half a second and tens of MiB). The engine draws
    datasketch's permutations itself, so neither a batch task nor deduplication imports it."""
    code = (
        "import sys, ingest.pipeline, ingest.batch; from ingest.minhash import Sketcher; from ingest.settings import DedupSettings;"
        "Sketcher(DedupSettings()).params;"
        "heavy = [m for m in ('datasketch', 'scipy') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_dag_test_ingests_the_sample_site(
    dag, sample_site: SampleSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    db_url = f"sqlite:///{tmp_path / 'news.db'}"
    monkeypatch.setenv("INGEST_FEEDS_FILE", str(sample_site.write_feeds_file(tmp_path / "feeds.yaml")))
    monkeypatch.setenv("INGEST_DB_URL", db_url)
    monkeypatch.setenv("INGEST_RAW_STORE", str(tmp_path / "raw"))
    monkeypatch.setenv("INGEST_ALLOW_PRIVATE_NETWORKS", "1")

    run = dag.test(run_conf=form())
    assert run.state == "success"
    first = exported(db_url)
    check_sample_site_store(first, sample_site.base_url)
    summary = run.get_task_instance("summarize").xcom_pull(task_ids="summarize")
    assert summary["articles_stored"] == len(first) and summary["duplicate_articles"] == 1

    counts = table_counts(db_url)
    again = dag.test(run_conf=form())
    assert again.state == "success"
    assert table_counts(db_url) == counts and exported(db_url) == first


@pytest.mark.slow
def test_a_failed_task_fails_the_run_but_the_summary_is_stored(
    dag, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from sqlalchemy import select

    from ingest.db import open_store, transaction
    from ingest.models import Run

    db_url = f"sqlite:///{tmp_path / 'news.db'}"
    monkeypatch.setenv("INGEST_FEEDS_FILE", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("INGEST_DB_URL", db_url)
    for task in dag.tasks:  # no retries inside this test: the failure is permanent anyway
        monkeypatch.setattr(task, "retries", 0)
    run = dag.test(run_conf=form())
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["plan"] == "failed" and states["summarize"] == "success" and states["fail_run"] == "failed"
    with transaction(open_store(db_url)) as session:
        (stored,) = session.scalars(select(Run)).all()
    assert stored.run_id == run.run_id


@pytest.fixture
def sample_env(sample_site: SampleSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    db_url = f"sqlite:///{tmp_path / 'news.db'}"
    monkeypatch.setenv("INGEST_FEEDS_FILE", str(sample_site.write_feeds_file(tmp_path / "feeds.yaml")))
    monkeypatch.setenv("INGEST_DB_URL", db_url)
    monkeypatch.setenv("INGEST_RAW_STORE", str(tmp_path / "raw"))
    monkeypatch.setenv("INGEST_ALLOW_PRIVATE_NETWORKS", "1")
    return db_url


def form(**values: object) -> dict[str, object]:
    """A whole trigger form: dag.test() keeps one run's conf in the DAG's params for the next."""
    return {"feeds": [], "urls": [], "reextract_only": False, "reextract_since": None, "dry_run": False, **values}


@pytest.mark.slow
def test_trigger_form_dry_run_urls_and_reextract_only(dag, sample_env: str, sample_site: SampleSite) -> None:  # type: ignore[no-untyped-def]
    from ingest.sample_site import load_articles

    dry = dag.test(run_conf=form(dry_run=True))
    assert dry.state == "success"
    summary = dry.get_task_instance("summarize").xcom_pull(task_ids="summarize")
    # each feed's count stands alone: a story two feeds list is new to both
    assert summary["feeds_fetched"] == 4 and summary["articles_new"] >= len(load_articles(sample_site.base_url))
    assert table_counts(sample_env)["articles"] == 0, "a dry run writes nothing"
    assert dry.get_task_instance("deduplicate").state == "skipped"

    one = load_articles(sample_site.base_url)[0].url
    manual = dag.test(run_conf=form(urls=[one]))
    assert manual.state == "success"
    (record,) = exported(sample_env)
    assert record["url"] == one and record["source"] == "manual" and record["text"]

    again = dag.test(run_conf=form(reextract_only=True))
    assert again.state == "success"
    summary = again.get_task_instance("summarize").xcom_pull(task_ids="summarize")
    assert (summary["pages_reextracted"], summary["pages_unchanged"], summary["feeds_fetched"]) == (1, 1, 0)
    assert exported(sample_env) == [record]


@pytest.mark.slow
def test_the_form_refuses_bad_input(dag, sample_env: str) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dag.test(run_conf=form(urls=["file:///etc/passwd"]))
    for task in dag.tasks:
        task.retries = 0
    run = dag.test(run_conf=form(feeds=["no-such-feed"]))
    assert run.state == "failed" and run.get_task_instance("plan").state == "failed"
