"""One pass of the pipeline, in the stages the DAG maps and the CLI runs in a row.

``plan`` reads the feeds file and splits it into batches; ``ingest_batch``
fetches a batch's feeds, records new entries, fetches their article pages
(concurrently across hosts), archives the raw bytes and extracts clean
passages; ``deduplicate`` then links every passage to its first appearance;
``summarize`` adds the counts up and records the run. Only names and counts
pass between stages: everything else is in the database and the raw archive.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from ingest.archive import RawArchive
from ingest.counts import Counts
from ingest.db import open_store, transaction
from ingest.dedup import deduplicate_pending
from ingest.extract import Extraction, decode_html, extract_page
from ingest.feeds import FeedParseError, ParsedFeed, parse_feed
from ingest.http import FetchResult, Fetcher
from ingest.models import Article, ArticleStatus, Capture, Entry, Feed, Passage
from ingest.passages import norm_hash, normalize
from ingest.settings import Settings
from ingest.sources import FeedConfig, load_feeds
from ingest.store import insert_ignore, record_run

log = logging.getLogger(__name__)

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_WRITE_EVERY = 25  # pages per transaction while a batch's pages come in
_MAX_URL = 2048  # longer canonical URLs are not indexable everywhere; such entries are ignored

Progress = Callable[[str, int], None]  # (event, count): "feeds"/"pages" totals, then "feed"/"page" steps


@dataclass
class RunStats(Counts):
    feeds_fetched: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    feeds_backing_off: int = 0
    entries_new: int = 0
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    articles_stored: int = 0
    duplicate_articles: int = 0
    passages_stored: int = 0
    duplicate_passages: int = 0


def _now() -> datetime:
    return datetime.now(timezone.utc)


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
        insert_ignore(session, Feed, [{"name": f.name, "url": f.url} for f in feeds])
        by_name = {f.name: f for f in feeds}
        for feed in session.scalars(select(Feed).where(Feed.name.in_(list(by_name)))):
            if feed.url != by_name[feed.name].url:
                # A new URL is a new feed: its validators and back-off do not carry over.
                feed.url, feed.etag, feed.last_modified = by_name[feed.name].url, None, None
                feed.error_count, feed.backoff_until = 0, None


class BatchRunner:
    """Fetch, archive and extract for one batch of feeds."""

    def __init__(self, settings: Settings, engine: Engine, progress: Progress | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.archive = RawArchive(settings.raw_store)
        self.progress = progress or (lambda _event, _n: None)
        self.stats = RunStats()

    async def run(self, feeds: Sequence[FeedConfig]) -> RunStats:
        async with Fetcher(self.settings.http, allow_private_networks=self.settings.allow_private_networks) as fetcher:
            await self._feeds(fetcher, feeds)
            await self._pages(fetcher, feeds)
        return self.stats

    # --- feeds -----------------------------------------------------------

    async def _feeds(self, fetcher: Fetcher, feeds: Sequence[FeedConfig]) -> None:
        now = _now()
        with transaction(self.engine) as session:
            rows = {f.name: f for f in session.scalars(select(Feed).where(Feed.name.in_([c.name for c in feeds])))}
        due = [c for c in feeds if not (rows[c.name].backoff_until and rows[c.name].backoff_until > now)]
        self.stats.feeds_backing_off += len(feeds) - len(due)
        self.progress("feeds", len(due))

        async def one(config: FeedConfig) -> tuple[FeedConfig, FetchResult, str | None]:
            row = rows[config.name]
            result = await fetcher.fetch(config.url, etag=row.etag, last_modified=row.last_modified, accept=FEED_ACCEPT)
            sha = await asyncio.to_thread(self.archive.put, result.body) if result.body is not None else None
            self.progress("feed", 1)
            return config, result, sha

        for config, result, sha in await asyncio.gather(*(one(c) for c in due)):
            self.stats.add(await asyncio.to_thread(self._record_feed, config, result, sha))

    def _record_feed(self, config: FeedConfig, result: FetchResult, sha: str | None) -> RunStats:
        """Record one feed fetch and its new entries in one transaction (runs in a worker thread)."""
        stats = RunStats()
        parsed: ParsedFeed | None = None
        error = result.error
        if result.ok and result.body is not None:
            try:
                parsed = parse_feed(result.body, result.final_url, result.content_type)
            except FeedParseError as exc:
                error = str(exc)
        with transaction(self.engine) as session:
            feed = session.scalars(select(Feed).where(Feed.name == config.name)).one()
            session.add(_capture("feed", result, sha, error))
            feed.last_fetched_at = result.fetched_at
            feed.last_status = result.status
            feed.fetch_count += 1
            if result.not_modified:
                feed.not_modified_count += 1
                stats.feeds_not_modified += 1
                self._feed_ok(feed, result)
            elif parsed is not None:
                stats.feeds_fetched += 1
                feed.etag, feed.last_modified = result.etag, result.last_modified
                self._feed_ok(feed, result)
                stats.entries_new += self._record_entries(session, feed, parsed)
            else:
                stats.feeds_failed += 1
                self._feed_failed(feed, result, error or f"HTTP {result.status}")
        return stats

    @staticmethod
    def _feed_ok(feed: Feed, result: FetchResult) -> None:
        feed.last_success_at = result.fetched_at
        feed.error_count, feed.last_error, feed.backoff_until = 0, None, None

    def _feed_failed(self, feed: Feed, result: FetchResult, error: str) -> None:
        """Back off linearly with the error streak, with jitter so that failed feeds
        do not all retry in the same minute; never disable a feed silently."""
        feed.error_count += 1
        feed.last_error = error
        minutes = min(self.settings.feed_backoff_minutes * feed.error_count, self.settings.feed_backoff_max_hours * 60)
        if result.status == 410:
            minutes = self.settings.feed_backoff_max_hours * 60
            feed.last_error = f"{error} (410 Gone: the publisher removed this feed; take it out of the feeds file)"
        delay = timedelta(minutes=minutes * (1 + random.uniform(0, 0.25)))
        if result.retry_after:
            delay = max(delay, timedelta(seconds=result.retry_after))
        feed.backoff_until = result.fetched_at + delay
        log.warning("feed %s failed (%s); backing off until %s", feed.name, feed.last_error, feed.backoff_until)

    @staticmethod
    def _record_entries(session: Session, feed: Feed, parsed: ParsedFeed) -> int:
        """New entries and their articles; an article already known (from this or
        another feed, via another tracking link) is not created twice."""
        now = _now()
        entries = {hashlib.sha1(e.key.encode()).hexdigest(): e for e in parsed.entries if len(e.url) <= _MAX_URL}
        known = set(
            session.scalars(select(Entry.key_hash).where(Entry.feed_id == feed.id, Entry.key_hash.in_(list(entries))))
        )
        fresh = {h: e for h, e in entries.items() if h not in known}
        if not fresh:
            return 0
        insert_ignore(
            session,
            Article,
            [
                {
                    "url": e.url, "raw_url": e.link[:4096], "source": feed.name, "status": ArticleStatus.pending,
                    "attempts": 0, "discovered_at": now, "feed_title": e.title, "feed_published": e.published,
                }
                for e in fresh.values()
            ],
        )
        ids = dict(session.execute(select(Article.url, Article.id).where(Article.url.in_([e.url for e in fresh.values()]))).all())
        session.add_all(
            Entry(
                feed_id=feed.id, key_hash=h, key=e.key, article_id=ids[e.url], title=e.title,
                link=e.link[:4096], published=e.published, first_seen_at=now,
            )
            for h, e in fresh.items()
        )
        return len(fresh)

    # --- pages -----------------------------------------------------------

    async def _pages(self, fetcher: Fetcher, feeds: Sequence[FeedConfig]) -> None:
        robots = {c.name: c.respect_robots for c in feeds}
        with transaction(self.engine) as session:
            todo = session.execute(
                select(Article.id, Article.url, Article.source)
                .where(
                    Article.source.in_(list(robots)),
                    or_(
                        Article.status == ArticleStatus.pending,
                        (Article.status == ArticleStatus.failed) & (Article.attempts < self.settings.max_page_attempts),
                    ),
                )
                .order_by(Article.id)
            ).all()
        self.progress("pages", len(todo))
        done: list[tuple[int, FetchResult, str | None, Extraction | None, str | None]] = []

        async def one(article_id: int, url: str, source: str) -> None:
            result = await fetcher.fetch(url, obey_robots=robots[source], accept=PAGE_ACCEPT)
            sha = await asyncio.to_thread(self.archive.put, result.body) if result.body is not None else None
            extraction, problem = await asyncio.to_thread(_extract, result)
            done.append((article_id, result, sha, extraction, problem))
            self.progress("page", 1)
            if len(done) >= _WRITE_EVERY:
                batch = done[:]
                done.clear()
                self.stats.add(await asyncio.to_thread(self._record_pages, batch))

        await asyncio.gather(*(one(*row) for row in todo))
        if done:
            self.stats.add(await asyncio.to_thread(self._record_pages, done))

    def _record_pages(self, results: list[tuple[int, FetchResult, str | None, Extraction | None, str | None]]) -> RunStats:
        """Write a group of page results in one transaction (runs in a worker thread)."""
        now = _now()
        stats = RunStats()
        with transaction(self.engine) as session:
            for article_id, result, sha, extraction, problem in results:
                article = session.get(Article, article_id)
                if article is None or article.status not in (ArticleStatus.pending, ArticleStatus.failed):
                    continue  # another worker got there first
                capture = _capture("page", result, sha, problem)
                session.add(capture)
                session.flush()
                article.capture_id = capture.id
                article.attempts += 1
                if extraction is None:
                    retry = result.retryable and article.attempts < self.settings.max_page_attempts
                    article.status = ArticleStatus.failed if retry else ArticleStatus.skipped
                    article.error = problem
                    if result.error_kind == "robots" or not result.error:
                        stats.pages_skipped += 1
                    else:
                        stats.pages_failed += 1
                    log.warning("page %s: %s", article.url, problem)
                    continue
                stats.pages_fetched += 1
                _apply_extraction(article, extraction, now)
        return stats


def _capture(kind: str, result: FetchResult, sha: str | None, error: str | None) -> Capture:
    return Capture(
        kind=kind, url=result.url, final_url=result.final_url, fetched_at=result.fetched_at, status=result.status,
        content_type=result.content_type, sha256=sha, size=len(result.body) if result.body is not None else None,
        error=error,
    )


def _extract(result: FetchResult) -> tuple[Extraction | None, str | None]:
    """The page's extraction, or why there is none."""
    if not result.ok or result.body is None:
        return None, result.error or f"HTTP {result.status}"
    content_type = (result.content_type or "").split(";")[0].strip().lower()
    if content_type and content_type not in _HTML_TYPES:
        return None, f"not an HTML page ({content_type})"
    extraction = extract_page(decode_html(result.body, result.content_type), result.final_url)
    if not extraction.paragraphs:
        return None, "no article text found on the page"
    return extraction, None


def _apply_extraction(article: Article, extraction: Extraction, now: datetime) -> None:
    article.title = extraction.title or article.feed_title
    article.author = extraction.author
    article.published = extraction.published or article.feed_published
    article.page_url = extraction.url
    article.site_name = extraction.site_name
    article.language = extraction.language
    article.removed = [r.as_dict() for r in extraction.removed]
    article.extracted_at = now
    article.status = ArticleStatus.extracted
    article.error = None
    article.duplicate_of_id = None
    article.passages = [
        Passage(position=i, text=text, norm_hash=norm_hash(normalize(text)))
        for i, text in enumerate(extraction.paragraphs)
    ]


def ingest_batch(settings: Settings, feed_names: Sequence[str], progress: Progress | None = None) -> dict[str, int]:
    """Fetch, archive and extract for the named feeds; returns counts."""
    by_name = {f.name: f for f in load_feeds(settings.feeds_file)}
    missing = [name for name in feed_names if name not in by_name]
    if missing:
        log.warning("feeds no longer in %s: %s", settings.feeds_file, ", ".join(missing))
    engine = open_store(settings.db_url)
    runner = BatchRunner(settings, engine, progress)
    stats = asyncio.run(runner.run([by_name[name] for name in feed_names if name in by_name]))
    log.info("batch of %d feeds: %s", len(feed_names), " ".join(f"{k}={v}" for k, v in stats.as_dict().items() if v))
    return stats.as_dict()


def deduplicate(settings: Settings) -> dict[str, int]:
    """Link every extracted passage to its first appearance; returns counts."""
    return deduplicate_pending(open_store(settings.db_url), settings.dedup).as_dict()


def summarize(settings: Settings, run_id: str, parts: Sequence[dict[str, int]], started_at: datetime | None = None) -> dict[str, int]:
    """Add up the stage counts and store them as this run's summary."""
    stats = RunStats.total(parts).as_dict()
    record_run(open_store(settings.db_url), run_id, stats, started_at)
    return stats
