"""One pass of the pipeline, in the stages the DAG maps and the CLI runs in a row.

``plan`` reads the feeds file and splits it into batches; ``ingest_batch``
fetches a batch's feeds and pages, archives the raw bytes and extracts clean
passages (``ingest.batch``); ``deduplicate`` links every passage to its first
appearance; ``summarize`` adds the counts up and records the run. Only names and
counts pass between stages: everything else is in the database and the raw archive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, select

from ingest import reprocess
from ingest.archive import RawArchive
from ingest.batch import BatchRunner, Progress
from ingest.counts import RunStats
from ingest.db import open_store, transaction
from ingest.dedup import deduplicate_pending
from ingest.models import Feed
from ingest.settings import Settings
from ingest.sources import FeedConfig, load_feeds
from ingest.store import insert_ignore, record_run

log = logging.getLogger(__name__)


def plan(settings: Settings) -> list[list[str]]:
    """Feed names in batches for mapped tasks, after syncing the feeds table with the file.

    Batches grow beyond ``feed_batch_size`` when needed to stay within
    ``max_feed_batches``, so thousands of feeds never hit Airflow's max_map_length.
    """
    feeds = load_feeds(settings.feeds_file)
    engine = open_store(settings.db_url)
    sync_feeds(engine, feeds)
    size = max(settings.feed_batch_size, -(-len(feeds) // settings.max_feed_batches))
    names = [feed.name for feed in feeds]
    return [names[start : start + size] for start in range(0, len(names), size)]


def sync_feeds(engine: Engine, feeds: Sequence[FeedConfig]) -> None:
    with transaction(engine) as session:
        insert_ignore(session, Feed, [{"name": f.name, "url": f.url} for f in sorted(feeds, key=lambda f: f.name)])
        by_name = {f.name: f for f in feeds}
        for feed in session.scalars(select(Feed).where(Feed.name.in_(list(by_name))).order_by(Feed.id)):
            if feed.url != by_name[feed.name].url:
                # A new URL is a new feed: its validators and back-off do not carry over.
                feed.url, feed.etag, feed.last_modified = by_name[feed.name].url, None, None
                feed.error_count, feed.backoff_until = 0, None


def ingest_batch(
    settings: Settings, feed_names: Sequence[str], progress: Progress | None = None, *, ignore_backoff: bool = False
) -> dict[str, int]:
    """Fetch, archive and extract for the named feeds; returns counts."""
    by_name = {f.name: f for f in load_feeds(settings.feeds_file)}
    missing = [name for name in feed_names if name not in by_name]
    if missing:
        log.warning("feeds no longer in %s: %s", settings.feeds_file, ", ".join(missing))
    runner = BatchRunner(settings, open_store(settings.db_url), progress, ignore_backoff=ignore_backoff)
    stats = asyncio.run(runner.run([by_name[name] for name in feed_names if name in by_name]))
    log.info("batch of %d feeds: %s", len(feed_names), " ".join(f"{k}={v}" for k, v in stats.as_dict().items() if v))
    return stats.as_dict()


def deduplicate(settings: Settings) -> dict[str, int]:
    """Link every extracted passage to its first appearance; returns counts."""
    return deduplicate_pending(open_store(settings.db_url), settings.dedup).as_dict()


def reextract(settings: Settings, start: datetime, end: datetime, *, dry_run: bool = False) -> dict[str, int]:
    """Today's rules over the pages captured in [start, end), from the raw archive; returns counts."""
    return reprocess.reextract(open_store(settings.db_url), RawArchive(settings.raw_store), start, end, dry_run=dry_run).as_dict()


def summarize(
    settings: Settings, run_id: str, parts: Sequence[dict[str, int]], started_at: datetime | None = None, batches_failed: int = 0
) -> dict[str, int]:
    """Add up the stage counts and store them as this run's summary."""
    stats = RunStats.total(parts)
    stats.batches_failed = batches_failed
    record_run(open_store(settings.db_url), run_id, stats.as_dict(), started_at)
    return stats.as_dict()
