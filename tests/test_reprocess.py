"""Re-extraction from the raw archive (what a backfill does for its interval): idempotent,
and a changed page replaces its passages without storing anything twice."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

import ingest.extract
from ingest.cli import main
from ingest.db import open_store, reading
from ingest.extract import Extraction
from ingest.models import Article, ArticleKey, LshKey, Passage, RecentArticleKey, RecentLshKey
from ingest.pipeline import deduplicate, reextract
from ingest.sample_site import SampleSite, load_articles
from tests.conftest import make_settings
from tests.test_pipeline import check_sample_site_store, exported

CORRECTION = "Correction: an earlier version of this story misstated the number of engineers the state will send."
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def stored_times(db_url: str) -> dict[str, datetime | None]:
    with reading(open_store(db_url)) as session:
        return dict(session.execute(select(Article.url, Article.stored_at)).tuples().all())


def snapshot(db_url: str) -> dict[str, Any]:
    """Every derived row, as values: what a no-op re-extraction must leave exactly as it was."""
    with reading(open_store(db_url)) as session:
        return {
            "articles": session.execute(
                select(Article.id, Article.status, Article.title, Article.published, Article.duplicate_of_id, Article.duplicate_share)
                .order_by(Article.id)
            ).all(),
            "passages": session.execute(
                select(Passage.id, Passage.article_id, Passage.position, Passage.text, Passage.duplicate_of_id, Passage.template)
                .order_by(Passage.id)
            ).all(),
            "lsh_keys": sorted(session.execute(select(LshKey.key, LshKey.passage_id).union_all(select(RecentLshKey.key, RecentLshKey.passage_id))).all()),
            "article_keys": sorted(
                session.execute(select(ArticleKey.key, ArticleKey.article_id).union_all(select(RecentArticleKey.key, RecentArticleKey.article_id))).all()
            ),
        }


@pytest.fixture
def ingested(sample_site: SampleSite, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, db_url, sample_site.write_feeds_file(tmp_path / "feeds.yaml"))
    monkeypatch.setenv("INGEST_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("INGEST_RAW_STORE", settings.raw_store)
    assert main(["run", "--feeds", str(settings.feeds_file), "--db", db_url]) == 0
    return settings


def test_reextracting_with_the_same_rules_changes_nothing(ingested, sample_site: SampleSite) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(ingested.db_url)
    now = datetime.now(timezone.utc)
    assert reextract(ingested, now - timedelta(days=3), now - timedelta(days=2))["pages_reextracted"] == 0  # nothing fetched then
    counts = reextract(ingested, EPOCH, now + timedelta(minutes=1))
    assert counts["pages_reextracted"] == counts["pages_unchanged"] == len(load_articles(sample_site.base_url))
    assert deduplicate(ingested)["articles_stored"] == 0
    assert snapshot(ingested.db_url) == before


def test_a_changed_page_replaces_its_passages_and_its_copies_follow(
    ingested, sample_site: SampleSite, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    syndicated = next(a for a in load_articles(sample_site.base_url) if a.syndicates)
    original_url = next(a.url for a in load_articles(sample_site.base_url) if a.slug == syndicated.syndicates)
    real = ingest.extract.extract_page

    def new_rules(html: str, url: str | None) -> Extraction:
        """Today's rules keep a correction line the old ones dropped, on one page."""
        extraction = real(html, url)
        return dataclasses.replace(extraction, paragraphs=[*extraction.paragraphs, CORRECTION]) if url == original_url else extraction

    monkeypatch.setattr(ingest.extract, "extract_page", new_rules)
    before = {r["url"]: r for r in exported(ingested.db_url)}
    stored_at = stored_times(ingested.db_url)
    dry = reextract(ingested, EPOCH, datetime.now(timezone.utc), dry_run=True)
    assert (dry["pages_changed"], dry["copies_requeued"]) == (1, 1)
    assert {r["url"]: r for r in exported(ingested.db_url)} == before, "a dry run writes nothing"

    counts = reextract(ingested, EPOCH, datetime.now(timezone.utc))
    assert (counts["pages_changed"], counts["copies_requeued"]) == (1, 1)
    assert deduplicate(ingested)["articles_stored"] == 2  # the page and its copy, decided again
    after = {r["url"]: r for r in exported(ingested.db_url)}
    assert sorted(after) == sorted(before), "no article added or lost"
    assert after[original_url]["text"] == before[original_url]["text"] + "\n" + CORRECTION
    assert after[syndicated.url] == before[syndicated.url], "the copy is linked to the new passages as it was to the old"
    check_sample_site_store(list(after.values()), sample_site.base_url)
    restored = stored_times(ingested.db_url)
    assert restored[original_url] > stored_at[original_url] and restored[syndicated.url] > stored_at[syndicated.url], "stored anew"
    assert {u: t for u, t in restored.items() if u not in (original_url, syndicated.url)} == {
        u: t for u, t in stored_at.items() if u not in (original_url, syndicated.url)}
    with reading(open_store(ingested.db_url)) as session:
        indexed = set(session.scalars(select(LshKey.passage_id).union(select(RecentLshKey.passage_id))))
        firsts = set(session.scalars(select(Passage.id).where(Passage.duplicate_of_id.is_(None))))
        assert indexed <= firsts, "the index names no replaced or duplicate passage"

    settled = snapshot(ingested.db_url)
    again = reextract(ingested, EPOCH, datetime.now(timezone.utc))
    assert again["pages_changed"] == 0 and again["pages_unchanged"] == again["pages_reextracted"]
    assert snapshot(ingested.db_url) == settled, "a second pass with the same rules changes nothing"


def test_changed_pages_leave_the_index_once_per_batch(ingested, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The index is keyed by band key, so taking passages out by id reads the whole table:
    done for each changed article, re-extracting a large store read it once per page."""
    real = ingest.extract.extract_page

    def with_correction(html: str, url: str | None) -> Extraction:
        extraction = real(html, url)
        return dataclasses.replace(extraction, paragraphs=[*extraction.paragraphs, CORRECTION])

    monkeypatch.setattr(ingest.extract, "extract_page", with_correction)
    engine = open_store(ingested.db_url)
    removals: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        if statement.startswith("DELETE FROM lsh_keys"):
            removals.append(statement)

    counts = reextract(ingested, EPOCH, datetime.now(timezone.utc))
    event.remove(engine, "before_cursor_execute", _record)
    assert counts["pages_changed"] > 1 and len(removals) == 1
    assert deduplicate(ingested)["articles_stored"] == counts["pages_changed"]
    with reading(engine) as session:
        indexed = set(session.scalars(select(LshKey.passage_id).union(select(RecentLshKey.passage_id))))
        assert indexed and indexed <= set(session.scalars(select(Passage.id).where(Passage.duplicate_of_id.is_(None))))


def test_reextract_command_and_a_lost_archive(ingested, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["reextract", "--db", ingested.db_url, "--dry-run"]) == 0
    assert "pages unchanged" in capsys.readouterr().out
    for page in Path(ingested.raw_store).rglob("*.gz"):
        page.unlink()
    before = snapshot(ingested.db_url)
    assert main(["reextract", "--db", ingested.db_url, "--since", "2020-01-01"]) == 0
    assert "pages missing" in capsys.readouterr().out
    assert snapshot(ingested.db_url) == before, "a page missing from the archive keeps what it has"
    with pytest.raises(SystemExit) as bad_date:
        main(["reextract", "--db", ingested.db_url, "--since", "yesterday"])
    assert bad_date.value.code == 2 and "not an ISO date" in capsys.readouterr().err
