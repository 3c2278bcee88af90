"""One pass of the pipeline, in the stages the DAG maps and the CLI runs in a row.

``plan`` reads the feeds file and splits it into batches; ``ingest_batch``
fetches a batch's feeds and pages, archives the raw bytes and extracts clean
passages (``ingest.batch``); ``reextract`` re-derives a past interval from the
archive (``ingest.reprocess``); ``deduplicate`` links every passage to its first
appearance; ``summarize`` adds the counts up and records the run. Only names and
counts pass between stages: everything else is in the database and the raw
archive. What a run does (``Work``) follows from how it was started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, select

from ingest import reprocess
from ingest.archive import RawArchive
from ingest.batch import BatchRunner, Progress, Window
from ingest.counts import RunStats
from ingest.db import stage_store, transaction
from ingest.dedup import deduplicate_pending
from ingest.errors import UserError
from ingest.models import Feed
from ingest.settings import Settings
from ingest.sources import MANUAL, FeedConfig, load_feeds
from ingest.store import insert_ignore, record_run
from ingest.urls import canonicalize_url

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Work:
    """What one run does.

    A scheduled run takes every new feed entry. A backfill run covers its data
    interval (``window``): articles the feeds' sitemaps date inside it, and
    re-extraction of the pages fetched inside it. A manual run does what its form
    asks: some feeds, some article URLs, re-extraction only, or a dry run."""

    window: Window | None = None  # backfill: sitemaps, and re-extraction of this interval
    feeds: tuple[str, ...] = ()  # a subset of the feeds file; empty: every feed
    urls: tuple[str, ...] = ()  # article pages to ingest now (without them, feeds are read)
    reextract_only: bool = False  # fetch nothing: re-extract the window, or what was fetched since ``since``
    since: datetime | None = None
    dry_run: bool = False  # count what would change, write nothing

    def reextract_window(self, now: datetime) -> Window | None:
        """Pages fetched in this interval are re-extracted (None: none are)."""
        if self.reextract_only:
            start = self.since or (self.window[0] if self.window else EPOCH)
            return (start, self.window[1] if self.window and not self.since else now)
        return self.window

    @classmethod
    def of_run(cls, run_type: str, interval: Window | None, params: Mapping[str, Any]) -> Work:
        """The work of an Airflow run, from its type (a DagRunType, whose str() is not its
        value on Python 3.11), data interval and trigger-form params."""
        kind = getattr(run_type, "value", run_type)
        since = params.get("reextract_since")
        moment = datetime.fromisoformat(since) if since else None
        return cls(
            window=interval if kind == "backfill" else None,
            feeds=tuple(params.get("feeds") or ()),
            urls=tuple(params.get("urls") or ()),
            reextract_only=bool(params.get("reextract_only")),
            since=moment.replace(tzinfo=moment.tzinfo or timezone.utc) if moment else None,
            dry_run=bool(params.get("dry_run")),
        )


def plan(settings: Settings, work: Work = Work()) -> list[list[str]]:
    """Source names in batches for mapped tasks, after syncing the feeds table with the file.

    Batches grow beyond ``feed_batch_size`` when needed to stay within
    ``max_feed_batches``: a run's task instances stay in the tens however many feeds
    there are, since every task pays for its own start (see the README's capacity notes).
    Article URLs asked for by hand make one batch of their own (``manual``).
    """
    feeds = load_feeds(settings.feeds_file)
    unknown = sorted(set(work.feeds) - {f.name for f in feeds})
    if unknown:
        raise UserError(f"not in the feeds file {settings.feeds_file}: {', '.join(unknown)}")
    bad = [url for url in work.urls if not _fetchable(url)]
    if bad:
        raise UserError(f"not http(s) article URLs: {', '.join(bad)}")
    with stage_store(settings.db_url) as engine:
        sync_feeds(engine, feeds)
    if work.reextract_only:
        return []
    chosen = [f for f in feeds if f.name in work.feeds] if work.feeds else [] if work.urls else list(feeds)
    if work.window is not None:
        chosen = [f for f in chosen if f.sitemap]
    # A host's feeds in one batch where they fit: its politeness limit holds within a batch,
    # and batches run side by side.
    names = [f.name for f in sorted(chosen, key=lambda f: urlsplit(f.url).hostname or "")]
    size = max(settings.feed_batch_size, -(-len(names) // settings.max_feed_batches))
    return ([[MANUAL]] if work.urls else []) + [names[start : start + size] for start in range(0, len(names), size)]


def _fetchable(url: str) -> bool:
    try:
        return canonicalize_url(url).startswith(("http://", "https://"))
    except ValueError:
        return False


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
    settings: Settings, feed_names: Sequence[str], progress: Progress | None = None, *, ignore_backoff: bool = False,
    work: Work = Work(), owner: str | None = None,
) -> dict[str, int]:
    """Fetch, archive and extract for the named feeds (or the manual batch); returns counts.

    ``owner`` names who claims the pages (a task instance, a host): when the same owner
    comes back after being killed, it takes its claims over at once."""
    with stage_store(settings.db_url) as engine:
        runner = BatchRunner(settings, engine, progress, ignore_backoff=ignore_backoff, dry_run=work.dry_run, owner=owner)
        if list(feed_names) == [MANUAL]:
            stats = asyncio.run(runner.run_urls(work.urls))
        else:
            by_name = {f.name: f for f in load_feeds(settings.feeds_file)}
            missing = [name for name in feed_names if name not in by_name]
            if missing:
                log.warning("feeds no longer in %s: %s", settings.feeds_file, ", ".join(missing))
            stats = asyncio.run(runner.run([by_name[name] for name in feed_names if name in by_name], work.window))
    log.info("batch of %d sources: %s", len(feed_names), " ".join(f"{k}={v}" for k, v in stats.as_dict().items() if v))
    return stats.as_dict()


def deduplicate(settings: Settings) -> dict[str, int]:
    """Link every extracted passage to its first appearance; returns counts."""
    with stage_store(settings.db_url) as engine:
        return deduplicate_pending(engine, settings.dedup).as_dict()


def reextract(settings: Settings, start: datetime, end: datetime, *, dry_run: bool = False) -> dict[str, int]:
    """Today's rules over the pages captured in [start, end), from the raw archive; returns counts."""
    with stage_store(settings.db_url) as engine:
        return reprocess.reextract(engine, RawArchive(settings.raw_store), start, end, dry_run=dry_run).as_dict()


def summarize(
    settings: Settings, run_id: str, parts: Sequence[dict[str, int]], started_at: datetime | None = None,
    batches_failed: int = 0, *, dry_run: bool = False,
) -> dict[str, int]:
    """Add up the stage counts and store them as this run's summary (a dry run's is only returned)."""
    stats = RunStats.total(parts)
    stats.batches_failed = batches_failed
    if not dry_run:
        with stage_store(settings.db_url) as engine:
            record_run(engine, run_id, stats.as_dict(), started_at)
    return stats.as_dict()
