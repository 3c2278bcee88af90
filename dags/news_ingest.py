"""
### news_ingest

Every 30 minutes: read the feeds, fetch new article pages in mapped batches,
extract clean text, remove near-duplicate passages and syndicated copies, and
store the result. The work itself lives in the ``ingest`` package; this file
only wires the stages together.

**Backfills** (`airflow backfill create --dag-id news_ingest --from-date A --to-date B`)
cover each past data interval: articles the feeds' sitemaps date inside it are
fetched, and pages fetched inside it are re-extracted from the raw archive with
today's rules. Both are idempotent: a second backfill of the same days changes
nothing.

**Trigger form**: some feeds only, article URLs to ingest now, re-extract only
(no fetching), or a dry run that reports what would change.

Configuration comes from the environment of the workers: ``INGEST_FEEDS_FILE``,
``INGEST_DB_URL``, ``INGEST_RAW_STORE``, ``INGEST_ALLOW_PRIVATE_NETWORKS`` and the
other ``INGEST_*`` settings (see the README). ``INGEST_SCHEDULE`` changes the cron
expression. Pools: ``ingest_fetch`` and ``ingest_dedup`` (1 slot), from
``dags/pools.json`` (``airflow pools import dags/pools.json``). The deduplication
step updates the asset ``x-news-ingest://articles`` with its counts.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task

if TYPE_CHECKING:
    from ingest.pipeline import Work

# "news:" is the registered URI scheme of Usenet (RFC 5538); "x-" marks a scheme of our own.
ARTICLES = Asset(uri="x-news-ingest://articles", name="news_articles")

DEFAULT_ARGS = {
    "owner": "news-ingest",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,  # a multiplier in Airflow 3; True would mean no back-off
    "max_retry_delay": timedelta(minutes=30),
}

PARAMS = {
    "feeds": Param(
        [], type="array", items={"type": "string"}, title="Feeds",
        description="Only these feeds (names from the feeds file, one per line). Empty: every feed.",
    ),
    "urls": Param(
        [], type="array", items={"type": "string", "pattern": "^https?://", "maxLength": 2048}, title="Article URLs",
        description="Article pages to ingest now, one per line (robots.txt obeyed). With no feeds named, no feed is read.",
    ),
    "reextract_only": Param(
        False, type="boolean", title="Re-extract only",
        description="Fetch nothing: run today's extraction rules over archived pages, then deduplicate. "
        "A backfill covers its interval; a manual run, pages fetched since the date below (empty: all).",
    ),
    "reextract_since": Param(
        None, type=["null", "string"], format="date", title="Re-extract pages fetched since",
        description="With re-extract only: the first day (UTC) whose fetched pages are re-extracted.",
    ),
    "dry_run": Param(
        False, type="boolean", title="Dry run",
        description="Read feeds and sitemaps and count what is new, and what re-extraction would change; write nothing.",
    ),
}


def _work() -> Work:
    """What this run does, from its type (scheduled, backfill, manual), data interval and form."""
    from ingest.pipeline import Work

    context = get_current_context()
    start, end = context.get("data_interval_start"), context.get("data_interval_end")  # none for a run without a logical date
    return Work.of_run(context["dag_run"].run_type, (start, end) if start and end else None, context["params"])


@dag(
    dag_id="news_ingest",
    schedule=CronDataIntervalTimetable(os.environ.get("INGEST_SCHEDULE", "*/30 * * * *"), timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=2),
    params=PARAMS,
    tags=["news", "ingest"],
    doc_md=__doc__,
)
def news_ingest() -> None:
    @task
    def plan() -> list[list[str]]:
        """Sync the feeds table with the feeds file; source names in batches (one mapped task each)."""
        from ingest.pipeline import plan
        from ingest.settings import Settings

        return plan(Settings(), _work())

    @task(pool="ingest_fetch", map_index_template="{{ task.op_kwargs['feed_names'][0] }} …")
    def ingest_batch(feed_names: list[str]) -> dict[str, int]:
        """Fetch feeds (sitemaps in a backfill) and pages, archive raw bytes, extract passages: counts only in XCom."""
        from ingest.pipeline import ingest_batch
        from ingest.settings import Settings

        ti = get_current_context()["ti"]  # its retries take over the pages it had claimed when killed
        return ingest_batch(Settings(), feed_names, work=_work(), owner=f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}")

    @task(pool="ingest_dedup")
    def reextract() -> dict[str, int]:
        """Backfills and re-extract-only runs: today's rules over the interval's archived pages."""
        from airflow.sdk.exceptions import AirflowSkipException

        from ingest.pipeline import reextract
        from ingest.settings import Settings

        work = _work()
        window = work.reextract_window(datetime.now(timezone.utc))
        if window is None:
            raise AirflowSkipException("a scheduled or manual run re-extracts nothing unless asked to")
        return reextract(Settings(), *window, dry_run=work.dry_run)

    @task(pool="ingest_dedup", max_active_tis_per_dag=1, trigger_rule="all_done", outlets=[ARTICLES])
    def deduplicate(*, outlet_events: Any = None) -> dict[str, int]:
        """One at a time (pool, task limit and a database lock): link passages to first appearances."""
        from airflow.sdk.exceptions import AirflowSkipException

        from ingest.pipeline import deduplicate
        from ingest.settings import Settings

        if _work().dry_run:
            raise AirflowSkipException("dry run: nothing to deduplicate, and no asset update")
        counts = deduplicate(Settings())
        outlet_events[ARTICLES].extra = counts
        return counts

    @task(trigger_rule="all_done")
    def summarize(
        planned: list[list[str]] | None, batches: list[dict[str, int] | None], *stages: dict[str, int] | None
    ) -> dict[str, int]:
        """Log and return the run summary (failed batches counted), and store it in the news database."""
        import logging

        from ingest.pipeline import summarize
        from ingest.settings import Settings

        context = get_current_context()
        done = [part for part in batches or [] if part]
        stats = summarize(
            Settings(), context["run_id"], [*done, *(s or {} for s in stages)], context["dag_run"].start_date,
            batches_failed=len(planned or []) - len(done), dry_run=_work().dry_run,
        )
        logging.getLogger("ingest.summary").info("run summary: %s", " ".join(f"{k}={v}" for k, v in stats.items() if v))
        return stats

    @task(trigger_rule="one_failed", retries=0)
    def fail_run() -> None:
        """Runs only when a task failed, and fails, so the run shows failed in the UI (the
        summary has been stored anyway): all_done on summarize would otherwise hide it."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a task of this run failed; its log says which feed or page and why")

    planned = plan()
    results = ingest_batch.expand(feed_names=planned)
    again = reextract()
    planned >> again
    dedup = deduplicate()
    [results, again] >> dedup
    summary = summarize(planned, results, again, dedup)
    [planned, results, again, dedup, summary] >> fail_run()


news_ingest()
