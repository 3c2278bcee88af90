"""The load site's shape: hosts, their feeds, and which story each page carries.

Everything is derived from a seed, so a benchmark, its on-disk copy for the
extraction baseline and a test see the same pages. Nothing is rendered here:
a 20,000-page site is a few megabytes of ``Page`` records, and the server
renders a page when it is asked for it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

from ingest.load_site.stories import Story

SECTIONS = ("world", "business", "markets", "politics", "technology", "science", "health", "sport", "culture", "opinion",
            "energy", "climate", "local", "education", "travel", "autos", "media", "law", "economy", "agriculture")
NEWEST = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """What to generate and how to serve it."""

    hosts: int = 50
    feeds_per_host: int = 4
    articles: int = 2000
    syndicated: float = 0.1  # share of pages that are light edits of another host's story
    latency: float = 0.0  # seconds slept before every response
    bandwidth: float | None = None  # bytes per second per response; None: as fast as loopback goes
    seed: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.hosts <= 250:
            raise ValueError("hosts must be 1..250 (one loopback address each, from 127.0.0.2)")
        if self.feeds_per_host < 1 or self.articles < 1 or not 0 <= self.syndicated < 1:
            raise ValueError("feeds_per_host and articles must be positive, syndicated in [0, 1)")


@dataclass(frozen=True, slots=True)
class Page:
    """One article page: ``copy_of`` is the page whose story it syndicates, with light edits."""

    id: int
    host: int
    feed: int
    story: Story
    published: datetime
    copy_of: int | None = None

    @property
    def path(self) -> str:
        return f"/{SECTIONS[self.feed % len(SECTIONS)]}/{self.published:%Y/%m/%d}/story-{self.id}.html"


@dataclass(frozen=True, slots=True)
class Host:
    index: int

    @property
    def address(self) -> str:
        return f"127.0.0.{self.index + 2}"

    @property
    def name(self) -> str:
        return f"site{self.index:03d}"

    def feed_path(self, feed: int) -> str:
        return f"/feeds/{SECTIONS[feed % len(SECTIONS)]}-{feed}.xml"


class LoadModel:
    """Hosts, feeds and pages of one configuration (deterministic for its seed)."""

    def __init__(self, config: LoadConfig, stories: list[Story]) -> None:
        self.config = config
        self.hosts = [Host(i) for i in range(config.hosts)]
        self.pages = _pages(config, stories)

    @cached_property
    def by_host(self) -> dict[str, dict[str, Page]]:
        """address -> path -> page, for routing."""
        table: dict[str, dict[str, Page]] = {h.address: {} for h in self.hosts}
        for page in self.pages:
            table[self.hosts[page.host].address][page.path] = page
        return table

    @cached_property
    def feeds(self) -> dict[tuple[int, int], list[Page]]:
        """(host, feed) -> its pages, newest first (pages are generated newest first)."""
        table: dict[tuple[int, int], list[Page]] = {(h.index, f): [] for h in self.hosts for f in range(self.config.feeds_per_host)}
        for page in self.pages:
            table[page.host, page.feed].append(page)
        return table

    @cached_property
    def host_pages(self) -> dict[int, list[Page]]:
        """host -> its pages, newest first."""
        table: dict[int, list[Page]] = {h.index: [] for h in self.hosts}
        for page in self.pages:
            table[page.host].append(page)
        return table

    def nearby(self, page: Page, count: int) -> list[Page]:
        """The host's pages published just before ``page`` (wrapping round): related links and teasers."""
        siblings = self.host_pages[page.host]
        at = siblings.index(page)
        return (siblings[at + 1:] + siblings[:at])[:count]


def _pages(config: LoadConfig, stories: list[Story]) -> list[Page]:
    """Page ``j`` lives on host ``j % hosts``; a share are syndicated copies of another host's recent story.

    When there are more pages than stories the stories come round again (as wire updates do);
    the pipeline then links the repeats as copies."""
    rng = random.Random(config.seed)
    pages: list[Page] = []
    next_story = 0
    copied: set[int] = set()  # one copy per original, so that a copy's first appearance is unambiguous
    for j in range(config.articles):
        host = j % config.hosts
        feed = (j // config.hosts) % config.feeds_per_host
        published = NEWEST - timedelta(minutes=3 * (config.articles - 1 - j))
        originals = [p for p in pages[-4 * config.hosts:] if p.copy_of is None and p.host != host and p.id not in copied]
        if originals and rng.random() < config.syndicated:
            source = rng.choice(originals)
            copied.add(source.id)
            pages.append(Page(j, host, feed, source.story, published, copy_of=source.id))
            continue
        pages.append(Page(j, host, feed, stories[next_story % len(stories)], published))
        next_story += 1
    pages.reverse()  # newest first, the order feeds list them
    return pages
