"""Backfill work outside Airflow: sitemaps, a past window's discovery and re-extraction, and
what each kind of run does (``Work``)."""

from __future__ import annotations

import enum
import gzip
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ingest.errors import UserError
from ingest.pipeline import EPOCH, Work, deduplicate, ingest_batch, plan, reextract
from ingest.sample_site import SampleSite, load_articles
from ingest.sitemaps import SitemapError, parse_sitemap
from ingest.sources import load_feeds
from tests.conftest import make_settings
from tests.test_failures import write_feeds
from tests.test_pipeline import exported, table_counts

URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>https://news.example/a?utm_source=x</loc>
  <news:news><news:publication_date>2025-06-17T08:30:00-07:00</news:publication_date><news:title>A</news:title></news:news></url>
<url><loc>/b</loc><lastmod>2025-06-18</lastmod></url>
<url><loc>javascript:alert(1)</loc></url>
<url><loc>https://news.example/c</loc></url>
</urlset>"""


def test_a_news_sitemap_gives_canonical_urls_and_dates() -> None:
    sitemap = parse_sitemap(URLSET, "https://news.example/sitemap.xml", 1 << 20)
    assert [(e.url, e.title, e.published) for e in sitemap.entries] == [
        ("https://news.example/a", "A", datetime(2025, 6, 17, 15, 30, tzinfo=timezone.utc)),
        ("https://news.example/b", None, datetime(2025, 6, 18, tzinfo=timezone.utc)),
        ("https://news.example/c", None, None),
    ]
    assert parse_sitemap(gzip.compress(URLSET), "https://news.example/", 1 << 20).entries == sitemap.entries


def test_a_sitemap_index_names_its_children() -> None:
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <sitemap><loc>/news.xml</loc><lastmod>2025-06-20T00:00:00Z</lastmod></sitemap><sitemap><loc>/old.xml</loc></sitemap></sitemapindex>"""
    sitemap = parse_sitemap(index, "https://news.example/sitemap.xml", 1 << 20)
    assert sitemap.children == [("https://news.example/news.xml", datetime(2025, 6, 20, tzinfo=timezone.utc)), ("https://news.example/old.xml", None)]


def test_what_is_not_a_sitemap_is_refused() -> None:
    for body in (b"<html><body>Not found</body></html>", b"", b"\x00garbage"):
        with pytest.raises(SitemapError):
            parse_sitemap(body, "https://news.example/", 1 << 20)
    with pytest.raises(SitemapError, match="larger than"):
        parse_sitemap(gzip.compress(URLSET * 100), "https://news.example/", 1000)
    bomb = b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "' + b"x" * 10_000 + b'">]><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + b"<url><loc>https://e.example/&a;&a;&a;</loc></url>" * 1000 + b"</urlset>"
    parsed = parse_sitemap(bomb, "https://e.example/", 1 << 20)
    assert all(len(e.url) < 100 for e in parsed.entries), "entities are never expanded"


def test_the_work_of_each_kind_of_run() -> None:
    day = (datetime(2025, 6, 17, tzinfo=timezone.utc), datetime(2025, 6, 18, tzinfo=timezone.utc))
    now = datetime(2026, 11, 27, tzinfo=timezone.utc)
    scheduled = Work.of_run("scheduled", day, {})
    assert scheduled == Work() and scheduled.reextract_window(now) is None
    class DagRunType(str, enum.Enum):  # as the task SDK hands it over: str() is "DagRunType.BACKFILL"
        BACKFILL = "backfill"

    backfill = Work.of_run(DagRunType.BACKFILL, day, {})
    assert backfill.window == day and backfill.reextract_window(now) == day
    manual = Work.of_run("manual", day, {"reextract_only": True, "reextract_since": "2026-11-01"})
    assert manual.window is None and manual.reextract_window(now) == (datetime(2026, 11, 1, tzinfo=timezone.utc), now)
    assert Work.of_run("manual", day, {"reextract_only": True}).reextract_window(now) == (EPOCH, now)
    assert Work.of_run("backfill", day, {"reextract_only": True}).reextract_window(now) == day


def test_plan_follows_the_form(sample_site: SampleSite, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'news.db'}", sample_site.write_feeds_file(tmp_path / "feeds.yaml"))
    names = [f.name for f in load_feeds(settings.feeds_file)]
    assert plan(settings) == [names]
    assert plan(settings, Work(feeds=("metro-wire",))) == [["metro-wire"]]
    assert plan(settings, Work(urls=("https://news.example/a",))) == [["manual"]]
    assert plan(settings, Work(reextract_only=True)) == []
    with pytest.raises(UserError, match="not in the feeds file"):
        plan(settings, Work(feeds=("nope",)))
    with pytest.raises(UserError, match="not http"):
        plan(settings, Work(urls=("ftp://news.example/a",)))


def test_plan_keeps_a_host_together_and_the_task_count_bounded(tmp_path: Path) -> None:
    """Feeds listed in any order are batched host by host (politeness is per batch), and
    thousands of feeds make at most ``max_feed_batches`` larger batches."""
    feeds = {f"{host}-{n}": f"http://{host}.example/feed-{n}.xml" for n in range(30) for host in ("b", "a", "c")}
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'news.db'}", write_feeds(tmp_path / "feeds.yaml", feeds),
                             feed_batch_size=30)
    assert [{name.split("-")[0] for name in batch} for batch in plan(settings)] == [{"a"}, {"b"}, {"c"}]
    many = {f"site{n // 20}-{n}": f"http://site{n // 20}.example/{n}.xml" for n in range(5000)}
    settings = settings.model_copy(update={"feeds_file": write_feeds(tmp_path / "many.yaml", many), "feed_batch_size": 50})
    batches = plan(settings)
    assert len(batches) == settings.max_feed_batches == 16
    assert sorted(name for batch in batches for name in batch) == sorted(many)


def test_a_backfill_window_takes_what_the_sitemaps_date_inside_it(sample_site: SampleSite, db_url: str, tmp_path: Path) -> None:
    """Three past days, one at a time as a backfill runs them: each day's articles, once."""
    settings = make_settings(tmp_path, db_url, sample_site.write_feeds_file(tmp_path / "feeds.yaml"))
    articles = load_articles(sample_site.base_url)
    days = [datetime(2025, 6, d, tzinfo=timezone.utc) for d in (17, 18, 19)]
    for _ in range(2):  # the second backfill over the same days changes nothing
        for day in days:
            work = Work(window=(day, day + timedelta(days=1)))
            for batch in plan(settings, work):
                ingest_batch(settings, batch, work=work)
            reextract(settings, *work.window)  # type: ignore[misc]
            deduplicate(settings)
        stored = {r["url"] for r in exported(db_url)}
        expected = {a.url for a in articles if days[0] <= a.published < days[-1] + timedelta(days=1)}
        assert stored == expected
        if _ == 0:
            first = table_counts(db_url), exported(db_url)
    assert (table_counts(db_url), exported(db_url)) == first
