"""One batch of feeds: fetch the feeds, record new entries, then claim, fetch, archive and
extract their article pages.

Every feed and every page is handled on its own: whatever goes wrong with one (a
network error, a broken feed, a page that crashes the extractor) is recorded
against it with its reason, and the others carry on. Pages are claimed in the
database before they are fetched, so two workers (or a backfill beside a
scheduled run) never fetch the same page at once; a claim left by a worker that
died is taken over once it is older than ``CLAIM_LEASE``, or at once by the claim's
owner when it comes back (the retry of a killed task, ``ingest run`` again on that host).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
from concurrent.futures import Executor
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.orm import Session, selectinload

from ingest.archive import RawArchive
from ingest.counts import RunStats
from ingest.db import rolled_back, transaction
from ingest.extract import Extraction, decode_html, extract_page
from ingest.feeds import FeedEntry, FeedParseError, ParsedFeed, parse_feed
from ingest.http import FetchResult, Fetcher
from ingest.models import Article, ArticleStatus, Capture, Entry, Feed, Passage
from ingest.passages import norm_hash, normalize
from ingest.process_pool import process_pool
from ingest.settings import Settings
from ingest.sitemaps import Sitemap, SitemapError, parse_sitemap
from ingest.sources import MANUAL, FeedConfig
from ingest.store import insert_ignore
from ingest.urls import canonicalize_url

log = logging.getLogger(__name__)

SITEMAP_ACCEPT = "application/xml, text/xml;q=0.9, */*;q=0.5"
_MAX_SITEMAPS = 50  # children of one sitemap index read per feed and backfill run
Window = tuple[datetime, datetime]  # [start, end), UTC
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
CLAIM_LEASE = timedelta(hours=1)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_WRITE_EVERY = 25  # pages per transaction while a batch's pages come in
_MAX_URL = 2048  # longer canonical URLs are not indexable everywhere; such entries are ignored
_POOL_MIN_PAGES = 16  # fewer pages are not worth starting extraction processes for

Progress = Callable[[str, int], None]  # (event, count): "feeds"/"pages" totals, then "feed"/"page" steps


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class _Page:
    """A fetched page on its way to the database."""

    article_id: int
    claimed_at: datetime
    result: FetchResult
    sha256: str | None
    extraction: Extraction | None
    problem: str | None


class BatchRunner:
    def __init__(
        self, settings: Settings, engine: Engine, progress: Progress | None = None, *, ignore_backoff: bool = False,
        dry_run: bool = False, owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.archive = RawArchive(settings.raw_store)
        self.progress = progress or (lambda _event, _n: None)
        self.ignore_backoff = ignore_backoff
        self.dry_run = dry_run  # fetch feeds and sitemaps, count what is new, write nothing, fetch no page
        self.owner = owner  # who claims pages; the same owner again takes over its own claims
        self.stats = RunStats()

    async def run(self, feeds: Sequence[FeedConfig], window: Window | None = None) -> RunStats:
        """Feeds (or, for a past ``window``, their sitemaps), then the pages they list."""
        async with Fetcher(self.settings.http, allow_private_networks=self.settings.allow_private_networks) as fetcher:
            if window is None:
                await self._feeds(fetcher, feeds)
            else:
                await self._sitemaps(fetcher, feeds, window)
            if not self.dry_run:
                await self._pages(fetcher, [c.name for c in feeds], {c.name for c in feeds if not c.respect_robots})
        return self.stats

    async def run_urls(self, urls: Sequence[str]) -> RunStats:
        """Article pages asked for by hand (listed under the ``manual`` source), robots.txt obeyed."""
        with self._writing() as session:
            feed = _manual_feed(session)
            canonical = {link: canonicalize_url(link) for link in urls}
            entries = [FeedEntry(key=f"url:{url}", url=url, link=link, title=None, published=None) for link, url in canonical.items()]
            self.stats.add(self._record_entries(session, feed, ParsedFeed(title=None, entries=entries)))
        if not self.dry_run:
            async with Fetcher(self.settings.http, allow_private_networks=self.settings.allow_private_networks) as fetcher:
                await self._pages(fetcher, [MANUAL], set())
        return self.stats

    def _writing(self) -> AbstractContextManager[Session]:
        """A transaction, rolled back at the end in a dry run: the same code reports what it would write."""
        return rolled_back(self.engine) if self.dry_run else transaction(self.engine)

    # --- feeds -----------------------------------------------------------

    async def _feeds(self, fetcher: Fetcher, feeds: Sequence[FeedConfig]) -> None:
        now = _now()
        with transaction(self.engine) as session:
            rows = {f.name: f for f in session.scalars(select(Feed).where(Feed.name.in_([c.name for c in feeds])))}
        due = [c for c in feeds if self.ignore_backoff or not (rows[c.name].backoff_until and rows[c.name].backoff_until > now)]
        for config in feeds:
            if config not in due:
                log.info("feed %s backs off until %s (%s)", config.name, rows[config.name].backoff_until, rows[config.name].last_error)
        self.stats.feeds_backing_off += len(feeds) - len(due)
        self.progress("feeds", len(due))

        async def one(config: FeedConfig) -> tuple[FeedConfig, FetchResult, str | None]:
            row = rows[config.name]
            result = await fetcher.fetch(config.url, etag=row.etag, last_modified=row.last_modified, accept=FEED_ACCEPT)
            sha = await self._archive(result)
            self.progress("feed", 1)
            return config, result, sha

        for config, result, sha in await asyncio.gather(*(one(c) for c in due)):
            self.stats.add(await asyncio.to_thread(self._record_feed, config, result, sha))

    async def _archive(self, result: FetchResult) -> str | None:
        if result.body is None or self.dry_run:
            return None
        return await asyncio.to_thread(self.archive.put, result.body)

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
            except Exception as exc:  # a feed must never stop the others, whatever it holds
                log.exception("feed %s could not be parsed", config.name)
                error = f"could not parse the feed: {type(exc).__name__}: {exc}"
        with self._writing() as session:
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
                feed.title = parsed.title or feed.title
                self._feed_ok(feed, result)
                stats.add(self._record_entries(session, feed, parsed))
            else:
                stats.feeds_failed += 1
                self._feed_failed(feed, result, error or f"HTTP {result.status}")
        return stats

    @staticmethod
    def _feed_ok(feed: Feed, result: FetchResult) -> None:
        feed.last_success_at = result.fetched_at
        feed.error_count, feed.last_error, feed.backoff_until = 0, None, None

    def _feed_failed(self, feed: Feed, result: FetchResult, error: str) -> None:
        """Back off linearly with the error streak, with jitter so that failed feeds do not
        all retry in the same minute; never disable a feed silently. A target refused by
        the SSRF guard is a setting, not the feed's fault: it is tried again next run."""
        feed.error_count += 1
        feed.last_error = error
        if result.error_kind == "blocked":
            log.warning("feed %s refused: %s", feed.name, error)
            return
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
    def _record_entries(session: Session, feed: Feed, parsed: ParsedFeed) -> RunStats:
        """New entries and their articles; an article already known (from this or another
        feed, through another tracking link) is not created twice. Rows go in sorted by
        key, so that concurrent workers lock them in the same order."""
        stats = RunStats()
        now = _now()
        entries = {hashlib.sha1(e.key.encode()).hexdigest(): e for e in parsed.entries if len(e.url) <= _MAX_URL}
        known = set(
            session.scalars(select(Entry.key_hash).where(Entry.feed_id == feed.id, Entry.key_hash.in_(list(entries))))
        )
        fresh = {h: e for h, e in sorted(entries.items()) if h not in known}
        if not fresh:
            return stats
        urls = sorted({e.url for e in fresh.values()})
        existing = set(session.scalars(select(Article.url).where(Article.url.in_(urls))))
        first = {}
        for e in fresh.values():
            first.setdefault(e.url, e)
        insert_ignore(
            session,
            Article,
            [
                {
                    "url": url, "raw_url": first[url].link, "source": feed.name, "status": ArticleStatus.pending,
                    "attempts": 0, "discovered_at": now, "feed_title": first[url].title, "feed_published": first[url].published,
                }
                for url in urls
                if url not in existing
            ],
        )
        ids = dict(session.execute(select(Article.url, Article.id).where(Article.url.in_(urls))).all())
        insert_ignore(
            session,
            Entry,
            [
                {
                    "feed_id": feed.id, "key_hash": h, "key": e.key, "article_id": ids[e.url], "title": e.title,
                    "link": e.link, "published": e.published, "first_seen_at": now,
                }
                for h, e in fresh.items()
            ],
        )
        stats.entries_new = len(fresh)
        stats.articles_new = len(set(urls) - existing)
        return stats

    # --- sitemaps (backfills) ---------------------------------------------

    async def _sitemaps(self, fetcher: Fetcher, feeds: Sequence[FeedConfig], window: Window) -> None:
        """Articles the feeds' sitemaps date inside ``window``, recorded as the feeds' entries.
        A sitemap index is followed one level down, to the children modified since the
        window began (at most ``_MAX_SITEMAPS`` per feed)."""
        start, end = window

        async def fetch(config: FeedConfig, url: str) -> Sitemap | None:
            result = await fetcher.fetch(url, obey_robots=config.respect_robots, accept=SITEMAP_ACCEPT)
            sha = await self._archive(result)
            error = result.error
            sitemap = None
            if result.ok and result.body is not None:
                try:
                    sitemap = await asyncio.to_thread(parse_sitemap, result.body, result.final_url, self.settings.http.max_body_bytes)
                except SitemapError as exc:
                    error = str(exc)
            if not self.dry_run:
                with transaction(self.engine) as session:
                    session.add(_capture("sitemap", result, sha, error if sitemap is None else None))
            if sitemap is None:
                self.stats.sitemaps_failed += 1
                log.warning("sitemap %s of feed %s: %s", url, config.name, error or f"HTTP {result.status}")
            else:
                self.stats.sitemaps_fetched += 1
            return sitemap

        async def one(config: FeedConfig) -> None:
            assert config.sitemap is not None
            top = await fetch(config, config.sitemap)
            if top is None:
                return
            children = [url for url, modified in top.children if modified is None or modified >= start][:_MAX_SITEMAPS]
            maps = [top, *[m for m in await asyncio.gather(*(fetch(config, url) for url in children)) if m is not None]]
            found = [e for m in maps for e in m.entries if e.published is not None and start <= e.published < end]
            with self._writing() as session:
                feed = session.scalars(select(Feed).where(Feed.name == config.name)).one()
                self.stats.add(self._record_entries(session, feed, ParsedFeed(title=None, entries=found)))
            log.info("feed %s: %d articles dated %s to %s in its sitemap", config.name, len(found), start, end)

        with_maps = [c for c in feeds if c.sitemap]
        self.progress("feeds", len(with_maps))
        for config in with_maps:
            await one(config)
            self.progress("feed", 1)

    # --- pages -----------------------------------------------------------

    def _claim(self, names: Sequence[str], ignore_robots: set[str]) -> tuple[datetime, list[tuple[int, str, bool]]]:
        """Claim the pages these feeds list that need fetching: (id, url, obey robots).

        robots.txt is obeyed unless every feed of the batch that lists the page is in ``ignore_robots``."""
        now = _now()
        s = self.settings
        with transaction(self.engine) as session:
            feed_ids = dict(session.execute(select(Feed.id, Feed.name).where(Feed.name.in_(list(names)))).all())
            takeover = [Article.claimed_at < now - CLAIM_LEASE] + ([Article.claimed_by == self.owner] if self.owner else [])
            due = or_(
                Article.status == ArticleStatus.pending,
                and_(Article.status == ArticleStatus.failed, Article.attempts < s.max_page_attempts),
                and_(Article.status == ArticleStatus.fetching, or_(*takeover)),
            )
            listed = select(Entry.article_id).where(Entry.feed_id.in_(list(feed_ids)))
            candidates = (
                select(Article.id).where(Article.id.in_(listed), due).order_by(Article.id).with_for_update(skip_locked=True)
            )
            claimed = session.execute(
                update(Article)
                .where(Article.id.in_(candidates), due)
                .values(status=ArticleStatus.fetching, claimed_at=now, claimed_by=self.owner)
                .returning(Article.id, Article.url)
            ).all()
            listing: dict[int, set[str]] = {}
            for article_id, feed_id in session.execute(
                select(Entry.article_id, Entry.feed_id).where(Entry.article_id.in_([a for a, _ in claimed]), Entry.feed_id.in_(list(feed_ids)))
            ):
                listing.setdefault(article_id, set()).add(feed_ids[feed_id])
        return now, sorted((a, url, not (listing.get(a) and listing[a] <= ignore_robots)) for a, url in claimed)

    async def _pages(self, fetcher: Fetcher, names: Sequence[str], ignore_robots: set[str]) -> None:
        claimed_at, todo = await asyncio.to_thread(self._claim, names, ignore_robots)
        self.progress("pages", len(todo))
        done: list[_Page] = []
        pool = _extraction_pool(self.settings.extract_processes, len(todo))
        loop = asyncio.get_running_loop()

        async def one(article_id: int, url: str, obey_robots: bool) -> None:
            result = await fetcher.fetch(url, obey_robots=obey_robots, accept=PAGE_ACCEPT)
            sha = await self._archive(result)
            if result.ok and result.body is not None:
                extraction, problem = await loop.run_in_executor(pool, extract_body, result.body, result.content_type, result.final_url)
            else:
                extraction, problem = None, result.error or f"HTTP {result.status}"
            done.append(_Page(article_id, claimed_at, result, sha, extraction, problem))
            self.progress("page", 1)
            if len(done) >= _WRITE_EVERY:
                group = done[:]
                done.clear()
                self.stats.add(await asyncio.to_thread(self._record_pages, group))

        try:
            await asyncio.gather(*(one(*row) for row in todo))
            if done:
                self.stats.add(await asyncio.to_thread(self._record_pages, done))
        except BaseException:
            await asyncio.to_thread(self._release, claimed_at, [article_id for article_id, _, _ in todo])
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _release(self, claimed_at: datetime, article_ids: list[int]) -> None:
        """Hand back the claims of a batch that failed (the database connection dropped, the
        task was stopped), so that its retry fetches those pages at once instead of after
        CLAIM_LEASE. Pages already written are not ours any more and stay as they are.
        Best effort: when the database itself is gone, the lease still frees them."""
        try:
            with transaction(self.engine) as session:
                session.execute(
                    update(Article)
                    .where(Article.id.in_(article_ids), Article.status == ArticleStatus.fetching, Article.claimed_at == claimed_at)
                    .values(status=ArticleStatus.pending, claimed_at=None, claimed_by=None)
                )
        except Exception:
            log.warning("could not hand back %d page claims; they are taken over after %s", len(article_ids), CLAIM_LEASE, exc_info=True)

    def _record_pages(self, pages: list[_Page]) -> RunStats:
        """Write a group of page results in one transaction (runs in a worker thread)."""
        now = _now()
        stats = RunStats()
        with transaction(self.engine) as session:
            titles = dict(session.execute(select(Feed.name, Feed.title)).all())
            # The group's articles and their passages in two queries, and one flush at the end:
            # a query and a flush per page were a quarter of the main process's CPU.
            articles = {a.id: a for a in session.scalars(
                select(Article).where(Article.id.in_([p.article_id for p in pages])).options(selectinload(Article.passages))
            )}
            for page in sorted(pages, key=lambda p: p.article_id):
                article = articles.get(page.article_id)
                if article is None or article.status != ArticleStatus.fetching or article.claimed_at != page.claimed_at:
                    continue  # our claim went stale and another worker took the page over
                capture = _capture("page", page.result, page.sha256, page.problem)
                session.add(capture)
                article.capture = capture
                article.attempts += 1
                article.claimed_at = None
                article.claimed_by = None
                if page.extraction is None:
                    retry = page.result.retryable and article.attempts < self.settings.max_page_attempts
                    article.status = ArticleStatus.failed if retry else ArticleStatus.skipped
                    article.error = page.problem
                    if page.result.error_kind == "robots" or not page.result.error:
                        stats.pages_skipped += 1
                    else:
                        stats.pages_failed += 1
                    log.warning("page %s: %s", article.url, page.problem)
                    continue
                stats.pages_fetched += 1
                apply_extraction(article, page.extraction, now, titles.get(article.source))
        return stats


def _manual_feed(session: Session) -> Feed:
    """The source of pages asked for by hand: a feed row with nothing to fetch."""
    insert_ignore(session, Feed, [{"name": MANUAL, "url": ""}])
    return session.scalars(select(Feed).where(Feed.name == MANUAL)).one()


def _capture(kind: str, result: FetchResult, sha: str | None, error: str | None) -> Capture:
    return Capture(
        kind=kind, url=result.url, final_url=result.final_url, fetched_at=result.fetched_at, status=result.status,
        content_type=result.content_type, sha256=sha, size=len(result.body) if result.body is not None else None,
        error=error,
    )


def _extraction_pool(processes: int, pages: int) -> Executor | None:
    """Processes to extract pages on every core while the event loop keeps fetching
    (extraction is CPU-bound and holds the GIL). None means the loop's thread pool: for a
    few pages, for ``extract_processes=1``, or where this process may not have children
    (a daemonic worker process)."""
    workers = min(processes or os.cpu_count() or 1, pages)
    if workers < 2 or pages < _POOL_MIN_PAGES:
        return None
    pool = process_pool(workers)
    if pool is None:
        log.info("extracting in threads: this process is daemonic and may not start extraction processes")
    return pool


def extract_body(body: bytes, content_type: str | None, url: str | None) -> tuple[Extraction | None, str | None]:
    """A page's extraction, or why there is none; a page that crashes the extractor is skipped, not fatal.
    Fetching and re-extraction from the archive (``ingest.reprocess``) both come through here."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type and media_type not in _HTML_TYPES:
        return None, f"not an HTML page ({media_type})"
    try:
        extraction = extract_page(decode_html(body, content_type), url)
    except Exception as exc:
        log.exception("extraction of %s failed", url)
        return None, f"extraction failed: {type(exc).__name__}: {exc}"
    if not extraction.paragraphs:
        return None, "no article text found on the page"
    return extraction, None


def extracted_fields(article: Article, extraction: Extraction, feed_title: str | None) -> dict[str, Any]:
    """The article's columns that come from its page (the feed's title and date as fallbacks)."""
    precise = extraction.published is not None and not (extraction.published_day_only and article.feed_published)
    return {
        "title": extraction.title or article.feed_title,
        "author": extraction.author,
        "published": extraction.published if precise else article.feed_published,
        "page_url": extraction.url,
        "site_name": extraction.site_name or feed_title,
        "language": extraction.language,
        "removed": [r.as_dict() for r in extraction.removed],
    }


def apply_extraction(article: Article, extraction: Extraction, now: datetime, feed_title: str | None) -> None:
    """Write an extraction into the article: new passages, waiting for deduplication."""
    for name, value in extracted_fields(article, extraction, feed_title).items():
        setattr(article, name, value)
    article.extracted_at = now
    article.status = ArticleStatus.extracted
    article.error = None
    article.duplicate_of_id = None
    article.passages = [
        Passage(position=i, text=text, norm_hash=norm_hash(normalize(text)))
        for i, text in enumerate(extraction.paragraphs)
    ]
