"""Re-extraction from the raw archive: today's rules over the pages fetched in a past interval.

What a backfill run does for its data interval, and what ``ingest reextract``
does by hand after the rules change. Nothing is fetched: each page's archived
bytes go through the same extraction as a fresh fetch. An article whose text
comes out the same is left alone, so a second pass over the same interval
changes nothing. One whose text changed gets its new passages and goes back to
deduplication, together with the articles that copied it (their links pointed
at passages that no longer exist): replaced, never stored twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, selectinload

from ingest.archive import RawArchive
from ingest.band_index import ARTICLES, PASSAGES
from ingest.batch import apply_extraction, extracted_fields
from ingest.counts import RunStats
from ingest.db import among, lock, reading, transaction
from ingest.extract import extract_body
from ingest.models import Article, ArticleStatus, Capture, Feed, Passage

log = logging.getLogger(__name__)

_BATCH = 200  # articles per transaction
# Pages whose bytes are archived: stored and waiting articles, and failed or skipped ones
# whose page did arrive (today's rules may find the text yesterday's missed).
_REEXTRACTABLE = (ArticleStatus.stored, ArticleStatus.extracted, ArticleStatus.failed, ArticleStatus.skipped)


def pages_in(engine: Engine, start: datetime, end: datetime) -> list[int]:
    """Articles whose current page capture was fetched in [start, end) with a body in the archive."""
    with reading(engine) as session:
        return list(
            session.scalars(
                select(Article.id)
                .join(Capture, Capture.id == Article.capture_id)
                .where(
                    Capture.fetched_at >= start, Capture.fetched_at < end, Capture.sha256.is_not(None),
                    Capture.status.between(200, 299), Article.status.in_(_REEXTRACTABLE),
                )
                .order_by(Article.id)
            )
        )


def reextract(engine: Engine, archive: RawArchive, start: datetime, end: datetime, *, dry_run: bool = False) -> RunStats:
    """Re-extract every page captured in [start, end); with ``dry_run``, only count what would change."""
    ids = pages_in(engine, start, end)
    total = RunStats()
    for offset in range(0, len(ids), _BATCH):
        with reading(engine) if dry_run else transaction(engine) as session:
            if not dry_run:
                lock(session, "ingest-dedup")  # passages and links change under deduplication's feet otherwise
            total.add(_reextract_batch(session, archive, ids[offset : offset + _BATCH], dry_run))
    log.info("re-extracted %s to %s: %s", f"{start:%Y-%m-%d %H:%M}", f"{end:%Y-%m-%d %H:%M}",
             " ".join(f"{k}={v}" for k, v in total.as_dict().items() if v))
    return total


def _reextract_batch(session: Session, archive: RawArchive, ids: Sequence[int], dry_run: bool) -> RunStats:
    stats = RunStats()
    unindexed = _Unindexed()
    titles = dict(session.execute(select(Feed.name, Feed.title)).all())
    articles = session.scalars(
        select(Article).where(Article.id.in_(ids)).options(selectinload(Article.passages)).order_by(Article.id)
    ).all()
    captures = {c.id: c for c in session.scalars(select(Capture).where(Capture.id.in_([a.capture_id for a in articles])))}
    now = datetime.now(timezone.utc)
    for article in articles:
        capture = captures[article.capture_id]  # type: ignore[index]
        try:
            body = archive.get(capture.sha256)  # type: ignore[arg-type]
        except FileNotFoundError:
            log.warning("page %s: capture %s is no longer in the raw archive", article.url, capture.sha256)
            stats.pages_missing += 1
            continue
        stats.pages_reextracted += 1
        extraction, _problem = extract_body(body, capture.content_type, capture.final_url or capture.url)
        if extraction is None:  # still nothing to take: leave what the article has
            stats.pages_unchanged += 1
            continue
        fields = extracted_fields(article, extraction, titles.get(article.source))
        same_text = [p.text for p in article.passages] == extraction.paragraphs
        if same_text and article.status in (ArticleStatus.stored, ArticleStatus.extracted):
            if all(getattr(article, name) == value for name, value in fields.items()):
                stats.pages_unchanged += 1
                continue
            stats.metadata_updated += 1
            if not dry_run:
                for name, value in fields.items():
                    setattr(article, name, value)
            continue
        stats.pages_changed += 1
        stats.copies_requeued += len(_requeue(session, article.id, [p.id for p in article.passages], unindexed, dry_run))
        if not dry_run:
            # old rows out first: the unit of work would insert the new ones before deleting
            session.execute(delete(Passage).where(Passage.article_id == article.id))
            session.expire(article, ["passages"])
            apply_extraction(article, extraction, now, titles.get(article.source))
            article.duplicate_share = None
            session.flush()
    if not dry_run:
        unindexed.remove(session)
    return stats


@dataclass
class _Unindexed:
    """Passages and articles to take out of the index, once per batch: the index is keyed by
    band key, so a removal by id reads a whole table, and one per changed article read the
    passage index (a row per band and passage) once per article."""

    passages: set[int] = field(default_factory=set)
    articles: set[int] = field(default_factory=set)

    def remove(self, session: Session) -> None:
        if self.articles:
            PASSAGES.remove(session, sorted(self.passages))
            ARTICLES.remove(session, sorted(self.articles))


def _requeue(session: Session, article_id: int, passage_ids: list[int], unindexed: _Unindexed, dry_run: bool) -> set[int]:
    """Mark an article whose passages are about to be replaced, with the articles that copied
    it, for removal from the index; all of them go back to deduplication. Returns the copies."""
    copies = set(session.scalars(select(Passage.article_id).where(among(session, Passage.duplicate_of_id, passage_ids))))
    copies |= set(session.scalars(select(Article.id).where(Article.duplicate_of_id == article_id)))
    copies.discard(article_id)
    if dry_run:
        return copies
    again = sorted(copies | {article_id})
    unindexed.passages.update(session.scalars(select(Passage.id).where(Passage.article_id.in_(again))))
    unindexed.articles.update(again)
    session.execute(
        update(Passage)
        .where(Passage.article_id.in_(again))
        .values(duplicate_of_id=None, similarity=None),  # template flags stay: a first appearance is not re-flagged alone
        execution_options={"synchronize_session": False},
    )
    session.execute(
        update(Article)
        .where(Article.id.in_(again))
        .values(status=ArticleStatus.extracted, duplicate_of_id=None, duplicate_share=None, stored_at=None),  # stored anew
        execution_options={"synchronize_session": False},
    )
    return copies
