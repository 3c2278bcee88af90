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
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, NamedTuple, Protocol, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import Engine, Select, and_, insert, or_, select, update
from sqlalchemy.orm import Session

from ingest.archive import RawArchive
from ingest.counts import RunStats
from ingest.db import among, rolled_back, transaction
from ingest.extract import Extraction, extract_body, warm_up
from ingest.feeds import FeedEntry, ParsedFeed, read_feed
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
_WRITE_EVERY = 25  # pages per transaction while a batch's pages come in
_MAX_URL = 2048  # longer canonical URLs are not indexable everywhere; such entries are ignored
_POOL_MIN_PAGES = 16  # fewer pages are not worth starting extraction processes for

Progress = Callable[[str, int], None]  # (event, count): "feeds"/"pages" totals, then "feed"/"page" steps
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Claim(NamedTuple):
    """A page this batch holds, to fetch: nobody else fetches it while the claim is fresh."""

    article_id: int
    url: str
    obey_robots: bool
    claimed_at: datetime


@dataclass(frozen=True, slots=True)
class _Page:
    """A fetched page on its way to the database."""

    article_id: int
    claimed_at: datetime
    result: FetchResult
    sha256: str | None
    extraction: Extraction | None
    problem: str | None
    lost: bool = False  # its extraction process died, maybe of another page: tried again next run


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
        self.extractors = _Extractors(settings.extract_processes)
        self._flow: _PerHost[_Claim] | None = None  # pages being fetched, while the batch is at its pages
        self._claims: list[_Claim] = []  # every claim taken, handed back if the batch fails
        self._started = _now()

    async def run(self, feeds: Sequence[FeedConfig], window: Window | None = None) -> RunStats:
        """Feeds (or, for a past ``window``, their sitemaps), and the pages they list. A feed's
        new pages are claimed as it is recorded and start at once, while other feeds come in."""
        async with Fetcher(self.settings.http, allow_private_networks=self.settings.allow_private_networks) as fetcher:

            async def listing() -> None:
                if window is None:
                    await self._feeds(fetcher, feeds)
                else:
                    await self._sitemaps(fetcher, feeds, window)

            if self.dry_run:
                await listing()
            else:
                await self._pages(fetcher, [c.name for c in feeds], {c.name for c in feeds if not c.respect_robots}, listing)
        return self.stats

    async def run_urls(self, urls: Sequence[str]) -> RunStats:
        """Article pages asked for by hand (listed under the ``manual`` source), robots.txt obeyed."""
        with self._writing() as session:
            feed = _manual_feed(session)
            canonical = {link: canonicalize_url(link) for link in urls}
            entries = [FeedEntry(key=f"url:{url}", url=url, link=link, title=None, published=None) for link, url in canonical.items()]
            self.stats.add(self._record_entries(session, feed, ParsedFeed(title=None, entries=entries))[0])
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

        async def one(config: FeedConfig) -> None:
            row = rows[config.name]
            result = await fetcher.fetch(config.url, etag=row.etag, last_modified=row.last_modified, accept=FEED_ACCEPT)
            sha = await self._archive(result)
            parsed, problem = None, result.error
            if result.ok and result.body is not None:
                # In the extraction processes once they run: feedparser is pure Python, and
                # 200 feeds parsed in this process's threads starved the event loop that fetches pages.
                job = (read_feed, result.body, result.final_url, result.content_type)
                try:
                    parsed, problem = await self.extractors.run(*job)
                except BrokenProcessPool:  # not this feed's doing: feedparser cannot crash a process
                    parsed, problem = await asyncio.to_thread(*job)
            stats, claims = await asyncio.to_thread(self._record_feed, config, result, sha, parsed, problem)
            self.stats.add(stats)
            self._enqueue(claims)
            self.progress("feed", 1)

        feeds_flow = _PerHost(lambda c: c.url, self.settings.http.per_host_concurrency, self._in_progress(), one)
        feeds_flow.add(due)
        await feeds_flow.wait()

    async def _archive(self, result: FetchResult) -> str | None:
        if result.body is None or self.dry_run:
            return None
        return await asyncio.to_thread(self.archive.put, result.body)

    def _record_feed(
        self, config: FeedConfig, result: FetchResult, sha: str | None, parsed: ParsedFeed | None, error: str | None,
    ) -> tuple[RunStats, list[_Claim]]:
        """Record one feed fetch (``parsed``, or the ``error`` that left it unread) and its new
        entries in one transaction (runs in a worker thread), and claim their pages when they
        are to be fetched now. Pages of a feed that ignores robots.txt wait for the batch's own
        claim, which knows every feed that lists them."""
        stats = RunStats()
        claims: list[_Claim] = []
        with self._writing() as session:
            feed = session.scalars(select(Feed).where(Feed.name == config.name)).one()
            session.add(Capture(**_capture_values("feed", result, sha, error)))
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
                entries, new_articles = self._record_entries(session, feed, parsed)
                stats.add(entries)
                if self._flow is not None and config.respect_robots and new_articles:
                    claimed_at, claimed = self._claim_in(session, new_articles)
                    claims = [_Claim(article_id, url, True, claimed_at) for article_id, url in claimed]
            else:
                stats.feeds_failed += 1
                self._feed_failed(feed, result, error or f"HTTP {result.status}")
        return stats, claims

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
    def _record_entries(session: Session, feed: Feed, parsed: ParsedFeed) -> tuple[RunStats, list[int]]:
        """New entries and their articles; an article already known (from this or another
        feed, through another tracking link) is not created twice. Rows go in sorted by
        key, so that concurrent workers lock them in the same order. Returns the counts
        and the articles created."""
        stats = RunStats()
        now = _now()
        entries = {hashlib.sha1(e.key.encode()).hexdigest(): e for e in parsed.entries if len(e.url) <= _MAX_URL}
        known = set(
            session.scalars(select(Entry.key_hash).where(Entry.feed_id == feed.id, Entry.key_hash.in_(list(entries))))
        )
        fresh = {h: e for h, e in sorted(entries.items()) if h not in known}
        if not fresh:
            return stats, []
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
        return stats, sorted(ids[url] for url in set(urls) - existing)

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
                    session.add(Capture(**_capture_values("sitemap", result, sha, error if sitemap is None else None)))
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
                self.stats.add(self._record_entries(session, feed, ParsedFeed(title=None, entries=found))[0])
            log.info("feed %s: %d articles dated %s to %s in its sitemap", config.name, len(found), start, end)

        with_maps = [c for c in feeds if c.sitemap]
        self.progress("feeds", len(with_maps))
        for config in with_maps:
            await one(config)
            self.progress("feed", 1)

    # --- pages -----------------------------------------------------------

    def _claim(self, names: Sequence[str], ignore_robots: set[str]) -> list[_Claim]:
        """Claim the pages these feeds list that need fetching.

        robots.txt is obeyed unless every feed of the batch that lists the page is in ``ignore_robots``."""
        with transaction(self.engine) as session:
            feed_ids = dict(session.execute(select(Feed.id, Feed.name).where(Feed.name.in_(list(names)))).all())
            now, claimed = self._claim_in(session, select(Entry.article_id).where(Entry.feed_id.in_(list(feed_ids))))
            listing: dict[int, set[str]] = {}
            for article_id, feed_id in session.execute(
                select(Entry.article_id, Entry.feed_id).where(Entry.article_id.in_([a for a, _ in claimed]), Entry.feed_id.in_(list(feed_ids)))
            ):
                listing.setdefault(article_id, set()).add(feed_ids[feed_id])
        return sorted(_Claim(a, url, not (listing.get(a) and listing[a] <= ignore_robots), now) for a, url in claimed)

    def _claim_in(self, session: Session, articles: Select[tuple[int]] | list[int]) -> tuple[datetime, list[tuple[int, str]]]:
        """Claim those of ``articles`` that need fetching (new, failed with attempts left, or
        claimed by a worker that died): (id, URL) in id order, and the claim's time."""
        now = _now()
        # The owner's own claims are taken over when an earlier run of it left them, never this batch's.
        mine = [and_(Article.claimed_by == self.owner, Article.claimed_at < self._started)] if self.owner else []
        takeover = [Article.claimed_at < now - CLAIM_LEASE, *mine]
        due = or_(
            Article.status == ArticleStatus.pending,
            and_(Article.status == ArticleStatus.failed, Article.attempts < self.settings.max_page_attempts),
            and_(Article.status == ArticleStatus.fetching, or_(*takeover)),
        )
        candidates = select(Article.id).where(Article.id.in_(articles), due).order_by(Article.id).with_for_update(skip_locked=True)
        claimed = session.execute(
            update(Article)
            .where(Article.id.in_(candidates), due)
            .values(status=ArticleStatus.fetching, claimed_at=now, claimed_by=self.owner)
            .returning(Article.id, Article.url)
        ).all()
        return now, sorted((article_id, url) for article_id, url in claimed)

    def _enqueue(self, claims: list[_Claim]) -> None:
        """Claimed pages join the fetch queues at once."""
        if not claims or self._flow is None:
            return
        self._claims += claims
        self.progress("pages", len(claims))
        self.extractors.expect(len(self._claims))
        self._flow.add(claims)

    async def _pages(
        self, fetcher: Fetcher, names: Sequence[str], ignore_robots: set[str], listing: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Fetch, archive, extract and write the pages these feeds list, as they are claimed:
        by ``listing`` (reading the feeds) while it runs, then by the batch's own claim, which
        also takes what earlier runs left (pages to retry, claims of a worker that died)."""
        done: list[_Page] = []

        async def one(claim: _Claim) -> None:
            result = await fetcher.fetch(claim.url, obey_robots=claim.obey_robots, accept=PAGE_ACCEPT, turn_taken=True)
            sha = await self._archive(result)
            lost = False
            if result.ok and result.body is not None:
                try:
                    extraction, problem = await self.extractors.run(extract_body, result.body, result.content_type, result.final_url)
                except BrokenProcessPool:
                    extraction, problem, lost = None, "the extraction process died (a crash or out of memory) while this page was in it", True
            else:
                extraction, problem = None, result.error or f"HTTP {result.status}"
            done.append(_Page(claim.article_id, claim.claimed_at, result, sha, extraction, problem, lost))
            self.progress("page", 1)
            if len(done) >= _WRITE_EVERY:
                group = done[:]
                done.clear()
                self.stats.add(await asyncio.to_thread(self._record_pages, group))

        async def turn(claim: _Claim) -> None:
            await fetcher.turn(claim.url, obey_robots=claim.obey_robots)

        flow = self._flow = _PerHost(lambda claim: claim.url, self.settings.http.per_host_concurrency, self._in_progress(), one, turn)
        try:
            if listing is not None:
                await listing()
            self._enqueue(await asyncio.to_thread(self._claim, names, ignore_robots))
            await flow.wait()
            if done:
                self.stats.add(await asyncio.to_thread(self._record_pages, done))
        except BaseException:
            await flow.cancel()
            await asyncio.to_thread(self._release, self._claims)
            raise
        finally:
            self._flow = None
            self.extractors.close()

    def _in_progress(self) -> int:
        """Feeds or pages a batch holds at once, fetched or being fetched: every connection busy,
        and a few bodies ready for each extraction process (more would only wait in memory)."""
        return 2 * self.settings.http.concurrency + 2 * self.extractors.processes

    def _release(self, claims: list[_Claim]) -> None:
        """Hand back the claims of a batch that failed (the database connection dropped, the
        task was stopped), so that its retry fetches those pages at once instead of after
        CLAIM_LEASE. Pages already written are not ours any more and stay as they are.
        Best effort: when the database itself is gone, the lease still frees them."""
        by_time: dict[datetime, list[int]] = defaultdict(list)
        for claim in claims:
            by_time[claim.claimed_at].append(claim.article_id)
        try:
            with transaction(self.engine) as session:
                for claimed_at, article_ids in by_time.items():
                    session.execute(
                        update(Article)
                        .where(among(session, Article.id, article_ids), Article.status == ArticleStatus.fetching, Article.claimed_at == claimed_at)
                        .values(status=ArticleStatus.pending, claimed_at=None, claimed_by=None)
                    )
        except Exception:
            log.warning("could not hand back %d page claims; they are taken over after %s", len(claims), CLAIM_LEASE, exc_info=True)

    def _record_pages(self, pages: list[_Page]) -> RunStats:
        """Write a group of page results in one transaction (runs in a worker thread).

        Bulk statements and no ORM objects: a query and a flush per page, then the unit of
        work's bookkeeping per passage, were most of the main process's CPU. A page is
        written only while the claim is still ours; a claimed page has no passages yet."""
        now = _now()
        stats = RunStats()
        with transaction(self.engine) as session:
            titles = dict(session.execute(select(Feed.name, Feed.title)).all())
            listed = {row.id: row for row in session.execute(
                select(Article.id, Article.url, Article.source, Article.status, Article.claimed_at, Article.attempts,
                       Article.feed_title, Article.feed_published).where(Article.id.in_([p.article_id for p in pages]))
            )}
            ours = [
                page for page in sorted(pages, key=lambda p: p.article_id)
                if (row := listed.get(page.article_id)) is not None
                and row.status == ArticleStatus.fetching and row.claimed_at == page.claimed_at
            ]  # the others' claims went stale and another worker took them over
            if not ours:
                return stats
            capture_ids = session.scalars(
                insert(Capture).returning(Capture.id, sort_by_parameter_order=True),
                [_capture_values("page", p.result, p.sha256, p.problem) for p in ours],
            ).all()
            failed: list[dict[str, Any]] = []
            extracted: list[dict[str, Any]] = []
            passages: list[dict[str, Any]] = []
            for page, capture_id in zip(ours, capture_ids):
                row = listed[page.article_id]
                values = {"id": row.id, "capture_id": capture_id, "attempts": row.attempts + 1, "claimed_at": None, "claimed_by": None}
                if page.extraction is None:
                    retry = (page.result.retryable or page.lost) and row.attempts + 1 < self.settings.max_page_attempts
                    failed.append(values | {"status": ArticleStatus.failed if retry else ArticleStatus.skipped, "error": page.problem})
                    if not page.lost and (page.result.error_kind == "robots" or not page.result.error):
                        stats.pages_skipped += 1
                    else:
                        stats.pages_failed += 1
                    log.warning("page %s: %s", row.url, page.problem)
                    continue
                stats.pages_fetched += 1
                extracted.append(values | extracted_values(row, page.extraction, now, titles.get(row.source)))
                passages += passage_values(row.id, page.extraction.paragraphs)
            for rows in (failed, extracted):
                if rows:
                    session.execute(update(Article), rows)
            if passages:
                session.execute(insert(Passage), passages)
        return stats


class _PerHost(Generic[T]):
    """Runs ``work`` on items added at any time, at most ``limit`` at once and ``per_host``
    at once for one host.

    Each host gets its own workers (no more than ``per_host``), so a slow host holds no
    more places than it can use and the others keep every connection busy; the overall
    limit keeps what is fetched and waiting (bodies on their way to extraction or the
    database) bounded, whatever the length of the backlog. A host's items start in order.
    ``turn``, awaited before an item takes its place, waits out what its host asks for
    (a Crawl-delay) holding nothing: sleeping, a delayed host kept others' places."""

    def __init__(
        self, url: Callable[[T], str], per_host: int, limit: int, work: Callable[[T], Awaitable[None]],
        turn: Callable[[T], Awaitable[None]] | None = None,
    ) -> None:
        self._url = url
        self._per_host = per_host
        self._work = work
        self._turn = turn
        self._places = asyncio.Semaphore(limit)
        self._queues: dict[str, deque[T]] = defaultdict(deque)
        self._workers: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, items: Iterable[T]) -> None:
        hosts = set()
        for item in items:
            host = urlsplit(self._url(item)).netloc
            self._queues[host].append(item)
            hosts.add(host)
        for host in hosts:
            while self._workers[host] < min(self._per_host, len(self._queues[host])):
                self._workers[host] += 1
                self._tasks.add(asyncio.create_task(self._worker(host)))

    async def _worker(self, host: str) -> None:
        queue = self._queues[host]
        try:
            while queue:
                item = queue.popleft()
                if self._turn is not None:
                    await self._turn(item)
                async with self._places:
                    await self._work(item)
        finally:
            self._workers[host] -= 1

    async def wait(self) -> None:
        """Until every item is done, those added meanwhile too; the first failure stops the rest and is raised."""
        while self._tasks:
            done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
            self._tasks -= done
            failed = next((task for task in done if not task.cancelled() and task.exception() is not None), None)
            if failed is not None:
                await self.cancel()
                raise failed.exception()  # type: ignore[misc]

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


def _manual_feed(session: Session) -> Feed:
    """The source of pages asked for by hand: a feed row with nothing to fetch."""
    insert_ignore(session, Feed, [{"name": MANUAL, "url": ""}])
    return session.scalars(select(Feed).where(Feed.name == MANUAL)).one()


def _capture_values(kind: str, result: FetchResult, sha: str | None, error: str | None) -> dict[str, Any]:
    return {
        "kind": kind, "url": result.url, "final_url": result.final_url, "fetched_at": result.fetched_at,
        "status": result.status, "content_type": result.content_type, "sha256": sha,
        "size": len(result.body) if result.body is not None else None, "error": error,
    }


class _Extractors:
    """A batch's extraction processes, one per core: extraction (and feed parsing, once they
    run) is CPU-bound and holds the GIL, so it runs beside the event loop that keeps
    fetching. They start as soon as the batch is known to bring enough pages, while its
    feeds are still coming in, so that they are ready for the first page, and stop with
    the batch. Without them (a few pages, ``extract_processes=1``, a daemonic process that
    may not have children) pages are extracted in the event loop's threads, one at a time
    in effect.

    A process that dies (a crash in a C library, the kernel's out-of-memory killer) breaks
    the pool: every job in it fails with ``BrokenProcessPool``, and fresh processes take
    the jobs that come next. Which page killed it is not known, so the pages that were in
    it fail with attempts left, and a page that kills its process every time is skipped
    once its attempts are used up, instead of failing its batch on every retry."""

    def __init__(self, processes: int) -> None:
        self.processes = processes or os.cpu_count() or 1
        self.pool: Executor | None = None
        self._workers = 0  # decided once enough pages are coming

    def expect(self, pages: int) -> None:
        """``pages`` pages are coming: start the processes if they are worth it and not yet started."""
        if self._workers or pages < _POOL_MIN_PAGES or self.processes < 2:
            return
        self._workers = min(self.processes, pages)
        self._start()

    def _start(self) -> None:
        self.pool = process_pool(self._workers, preload=["ingest.extract", "ingest.feeds"])
        if self.pool is None:
            log.info("extracting in threads: this process is daemonic and may not start extraction processes")
            return
        for _ in range(self._workers):
            self.pool.submit(warm_up)  # starts a process (and its imports) now, not at the first page

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """``job(*args)`` in the processes when they run, else in a thread."""
        pool = self.pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, job, *args)
        except BrokenProcessPool:
            if pool is self.pool:  # the first job to find it broken starts new processes
                log.warning("an extraction process died; starting new ones")
                self.close()
                self._start()
            raise

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


class _Listed(Protocol):
    """What the feed said about an article: its page's title and date fall back to these."""

    feed_title: str | None
    feed_published: datetime | None


def extracted_fields(article: _Listed, extraction: Extraction, feed_title: str | None) -> dict[str, Any]:
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


def extracted_values(article: _Listed, extraction: Extraction, now: datetime, feed_title: str | None) -> dict[str, Any]:
    """Every column an extraction sets: the article waits for deduplication."""
    return extracted_fields(article, extraction, feed_title) | {
        "extracted_at": now, "status": ArticleStatus.extracted, "error": None, "duplicate_of_id": None,
    }


def passage_values(article_id: int, paragraphs: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"article_id": article_id, "position": i, "text": text, "norm_hash": norm_hash(normalize(text))}
        for i, text in enumerate(paragraphs)
    ]


def apply_extraction(article: Article, extraction: Extraction, now: datetime, feed_title: str | None) -> None:
    """Write an extraction into a loaded article: new passages, waiting for deduplication."""
    for name, value in extracted_values(article, extraction, now, feed_title).items():
        setattr(article, name, value)
    article.passages = [Passage(**values) for values in passage_values(article.id, extraction.paragraphs)]
