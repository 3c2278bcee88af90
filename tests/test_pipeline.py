"""The whole pass against the sample site, through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ingest.cli import main
from ingest.db import open_store, session_factory
from ingest.export import export_articles
from ingest.models import Article, Entry, LshKey, Passage, RecentLshKey
from ingest.sample_site import SampleSite, boilerplate, load_articles
from ingest.sample_site.content import load_site


def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, feeds: Path, db_url: str) -> None:
    monkeypatch.setenv("INGEST_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("INGEST_RAW_STORE", str(tmp_path / "raw"))
    assert main(["run", "--feeds", str(feeds), "--db", db_url]) == 0


def exported(db_url: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    export_articles(db_url, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def table_counts(db_url: str) -> dict[str, int]:
    with session_factory(open_store(db_url))() as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) for model in (Article, Entry, Passage, LshKey, RecentLshKey)}


def check_sample_site_store(records: list[dict[str, Any]], base: str) -> None:
    """What the sample site's ground truth says must hold in the store."""
    site = load_site(base)
    by_url = {r["url"]: r for r in records}
    articles = load_articles(base)
    assert sorted(by_url) == sorted(a.url for a in articles), "one stored article per story, canonical URLs"
    assert len(records) == len(by_url), "no story stored twice"

    for article in articles:
        record = by_url[article.url]
        assert set(record) >= {"url", "title", "published", "source", "text", "duplicate_of", "passages"}
        assert record["text"] == "\n".join(p["text"] for p in record["passages"])
        texts = [p["text"] for p in record["passages"]]
        missing = [p for p in article.body if p not in texts]
        assert not missing, f"{article.slug}: body paragraphs lost or merged: {missing}"
        leaked = [b for b in boilerplate(article) if b in record["text"]]
        assert not leaked, f"{article.slug}: boilerplate stored: {leaked}"
        assert record["title"] == article.title
        assert record["source"] == article.outlet
        assert record["published"] is not None

    copies = [a for a in articles if a.syndicates]
    assert copies, "the sample site has a syndicated copy"
    for copy in copies:
        original = site.article(copy.syndicates)
        record = by_url[copy.url]
        assert record["duplicate_of"] == original.url
        added = {e.copy for e in copy.edits if e.op == "add"}
        for index, paragraph in enumerate(copy.body):
            passage = next(p for p in record["passages"] if p["text"] == paragraph)
            expected = None if index in added else original.url
            assert passage["duplicate_of"] == expected, f"{copy.slug} paragraph {index}: {paragraph[:60]}"
    assert not [r["url"] for r in records if r["duplicate_of"] and r["url"] not in {c.url for c in copies}]

    for shared in site.shared_sentences:
        for slug in shared.articles:
            record = by_url[site.article(slug).url]
            holder = next(p for p in record["passages"] if shared.text in p["text"])
            assert holder["duplicate_of"] is None, "sharing one sentence is not near-duplication"


def test_cli_run_stores_the_sample_site_and_a_second_run_changes_nothing(
    sample_site: SampleSite, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = sample_site.write_feeds_file(tmp_path / "feeds.yaml")
    run_cli(monkeypatch, tmp_path, feeds, db_url)
    assert open_store(db_url).pool.checkedin() == 0, "each stage closes its connections (and their caches) when it ends"
    first = exported(db_url)
    check_sample_site_store(first, sample_site.base_url)

    seed_like = next(a for a in load_articles(sample_site.base_url) if a.slug.startswith("marlow-county"))
    with session_factory(open_store(db_url))() as session:
        article_id = session.scalar(select(Article.id).where(Article.url == seed_like.url))
        links = session.scalars(select(Entry.link).where(Entry.article_id == article_id)).all()
    assert len(links) == 2 and len(set(links)) == 2, "two tracking links, one article"

    counts = table_counts(db_url)
    run_cli(monkeypatch, tmp_path, feeds, db_url)
    assert table_counts(db_url) == counts
    assert exported(db_url) == first
    with session_factory(open_store(db_url))() as session:
        from ingest.models import Run

        last = session.scalars(select(Run).order_by(Run.id.desc())).first()
    assert last is not None
    assert last.stats["feeds_not_modified"] == 4 and last.stats["entries_new"] == 0 and last.stats["articles_stored"] == 0


def test_a_batch_keeps_every_host_within_its_limit_and_a_slow_host_holds_no_one_up() -> None:
    """Pages are scheduled per host: at most ``per_host`` of a host's and ``limit`` in all at
    once (bodies waiting for extraction stay bounded however long the backlog), each host's
    in its order, and a host that answers slowly does not keep the others waiting."""
    import asyncio
    from collections import Counter

    from ingest.batch import _PerHost

    items = [f"http://{host}.test/{n}" for n in range(12) for host in ("slow", "a", "b", "c", "d")]
    running: Counter[str] = Counter()
    peaks: Counter[str] = Counter()
    finished: list[str] = []

    async def work(url: str) -> None:
        host = url.split("/")[2]
        running[host] += 1
        running["all"] += 1
        peaks[host] = max(peaks[host], running[host])
        peaks["all"] = max(peaks["all"], running["all"])
        await asyncio.sleep(0.05 if host == "slow.test" else 0.001)
        running[host] -= 1
        running["all"] -= 1
        finished.append(url)

    async def run() -> None:
        flow = _PerHost(lambda url: url, 2, 5, work)
        flow.add(items[:10])
        await asyncio.sleep(0.01)
        flow.add(items[10:])  # pages claimed while others are being fetched
        await flow.wait()

    asyncio.run(run())
    assert sorted(finished) == sorted(items)
    assert peaks["all"] == 5 and max(v for k, v in peaks.items() if k != "all") == 2
    for host in ("slow.test", "a.test"):
        assert [u for u in finished if host in u] == [u for u in items if host in u]
    last_fast = max(i for i, url in enumerate(finished) if "slow" not in url)
    assert sum("slow" in url for url in finished[: last_fast + 1]) <= 4  # the others were done long before


def test_a_host_waiting_out_its_crawl_delay_holds_no_place() -> None:
    """A host's turn (its Crawl-delay) is waited for before its page takes one of the
    batch's places, so a delayed host cannot keep the others waiting."""
    import asyncio

    from ingest.batch import _PerHost

    finished: list[str] = []

    async def turn(url: str) -> None:
        if url.startswith("http://delayed.test/"):
            await asyncio.sleep(0.3)

    async def work(url: str) -> None:
        await asyncio.sleep(0.01)
        finished.append(url)

    async def run() -> None:
        flow = _PerHost(lambda url: url, 2, 1, work, turn)
        flow.add(["http://delayed.test/1", "http://delayed.test/2", *(f"http://a.test/{n}" for n in range(5))])
        await flow.wait()

    asyncio.run(run())
    assert finished[:5] == [f"http://a.test/{n}" for n in range(5)], "one place: the delayed host's waits did not hold it"
    assert sorted(finished[5:]) == ["http://delayed.test/1", "http://delayed.test/2"]
