"""
### news_ingest

Every 30 minutes: read the feeds file, fetch feeds and article pages in mapped
batches, extract clean text, remove near-duplicate passages and syndicated
copies, and store the result. The work itself lives in the ``ingest`` package;
this file only wires the stages together.

Configuration comes from the environment of the workers: ``INGEST_FEEDS_FILE``,
``INGEST_DB_URL``, ``INGEST_RAW_STORE``, ``INGEST_ALLOW_PRIVATE_NETWORKS`` and the
other ``INGEST_*`` settings (see the README). ``INGEST_SCHEDULE`` changes the cron
expression. Pools: ``ingest_dedup`` (1 slot) and ``ingest_fetch``, from
``dags/pools.json`` (``airflow pools import dags/pools.json``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "news-ingest",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,  # a multiplier in Airflow 3; True would mean no back-off
    "max_retry_delay": timedelta(minutes=30),
}


@dag(
    dag_id="news_ingest",
    schedule=CronDataIntervalTimetable(os.environ.get("INGEST_SCHEDULE", "*/30 * * * *"), timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=2),
    tags=["news", "ingest"],
    doc_md=__doc__,
)
def news_ingest() -> None:
    @task
    def plan() -> list[list[str]]:
        """Sync the feeds table with the feeds file; feed names in batches (one mapped task each)."""
        from ingest.pipeline import plan
        from ingest.settings import Settings

        return plan(Settings())

    @task(pool="ingest_fetch", map_index_template="{{ task.op_kwargs['feed_names'][0] }} …")
    def ingest_batch(feed_names: list[str]) -> dict[str, int]:
        """Fetch feeds and pages, archive raw bytes, extract passages: counts only in XCom."""
        from ingest.pipeline import ingest_batch
        from ingest.settings import Settings

        return ingest_batch(Settings(), feed_names)

    @task(pool="ingest_dedup", max_active_tis_per_dag=1, trigger_rule="all_done")
    def deduplicate() -> dict[str, int]:
        """One at a time (pool, task limit and a database lock): link passages to first appearances."""
        from ingest.pipeline import deduplicate
        from ingest.settings import Settings

        return deduplicate(Settings())

    @task(trigger_rule="all_done")
    def summarize(
        planned: list[list[str]] | None, batches: list[dict[str, int] | None], dedup: dict[str, int] | None
    ) -> dict[str, int]:
        """Log and return the run summary (failed batches counted), and store it in the news database."""
        import logging

        from ingest.pipeline import summarize
        from ingest.settings import Settings

        context = get_current_context()
        done = [part for part in batches if part]
        stats = summarize(
            Settings(), context["run_id"], [*done, dedup or {}], context["dag_run"].start_date,
            batches_failed=len(planned or []) - len(done),
        )
        logging.getLogger("ingest.summary").info("run summary: %s", " ".join(f"{k}={v}" for k, v in stats.items()))
        return stats

    @task(trigger_rule="one_failed", retries=0)
    def fail_run() -> None:
        """Runs only when a task failed, and fails, so the run shows failed in the UI (the
        summary has been stored anyway): all_done on summarize would otherwise hide it."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a task of this run failed; its log says which feed or page and why")

    planned = plan()
    results = ingest_batch.expand(feed_names=planned)
    dedup = deduplicate()
    results >> dedup
    summary = summarize(planned, results, dedup)
    [planned, results, dedup, summary] >> fail_run()


news_ingest()
