"""What the store says about itself: feed health, run history, duplicate clusters, search.

Read by ``ingest stats`` and by the monitoring page (``ingest.monitor``); every
query is a short read that never blocks the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, or_, select

from ingest.db import reading
from ingest.models import Article, ArticleStatus, Feed, Passage, Run
from ingest.sources import MANUAL

RUN_SERIES = ("articles_new", "articles_stored", "duplicate_articles", "duplicate_passages", "failures")


@dataclass(frozen=True)
class FeedHealth:
    name: str
    url: str
    last_success_at: datetime | None
    last_status: int | None
    error_count: int
    backoff_until: datetime | None
    last_error: str | None
    not_modified_share: float | None  # of fetches answered 304


@dataclass(frozen=True)
class RunPoint:
    run_id: str
    started_at: datetime
    counts: dict[str, int]


@dataclass(frozen=True)
class Copy:
    url: str
    title: str | None
    source: str
    site_name: str | None
    published: datetime | None
    similarity: float | None


@dataclass(frozen=True)
class Cluster:
    """One story and the outlets that carried it."""

    original: Copy
    copies: list[Copy]


def feed_health(engine: Engine) -> list[FeedHealth]:
    with reading(engine) as session:
        return [
            FeedHealth(
                f.name, f.url, f.last_success_at, f.last_status, f.error_count, f.backoff_until, f.last_error,
                f.not_modified_count / f.fetch_count if f.fetch_count else None,
            )
            for f in session.scalars(select(Feed).where(Feed.name != MANUAL).order_by(Feed.error_count.desc(), Feed.name))
        ]


def runs(engine: Engine, limit: int = 50) -> list[RunPoint]:
    """The latest runs, oldest first, with the series the page charts."""
    with reading(engine) as session:
        rows = session.scalars(select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)).all()
    points = []
    for run in reversed(rows):
        counts: dict[str, Any] = dict(run.stats)
        counts["failures"] = sum(int(counts.get(k, 0)) for k in ("feeds_failed", "pages_failed", "batches_failed"))
        points.append(RunPoint(run.run_id, run.started_at, {k: int(v) for k, v in counts.items()}))
    return points


def _copy(article: Article, similarity: float | None = None) -> Copy:
    return Copy(article.url, article.title, article.source, article.site_name, article.published, similarity)


def clusters(engine: Engine, limit: int = 20) -> list[Cluster]:
    """The stories most recently copied, each with every copy stored so far."""
    with reading(engine) as session:
        latest = (
            select(Article.duplicate_of_id, func.max(Article.stored_at).label("latest"))
            .where(Article.duplicate_of_id.is_not(None))
            .group_by(Article.duplicate_of_id)
            .order_by(func.max(Article.stored_at).desc())
            .limit(limit)
            .subquery()
        )
        originals = session.scalars(select(Article).join(latest, latest.c.duplicate_of_id == Article.id).order_by(latest.c.latest.desc())).all()
        copies = session.scalars(
            select(Article).where(Article.duplicate_of_id.in_([o.id for o in originals])).order_by(Article.published, Article.id)
        ).all()
        by_original: dict[int, list[Copy]] = {}
        for copy in copies:
            by_original.setdefault(copy.duplicate_of_id or 0, []).append(_copy(copy, copy.duplicate_share))
        return [Cluster(_copy(o), by_original.get(o.id, [])) for o in originals]


@dataclass(frozen=True)
class Hit:
    article: Copy
    snippet: str
    duplicate_of: str | None


def search(engine: Engine, query: str, limit: int = 50) -> list[Hit]:
    """Stored articles whose title or text contains every word of ``query`` (case-insensitive)."""
    words = query.split()[:8]
    if not words:
        return []
    with reading(engine) as session:
        found = select(Passage.article_id).where(*(Passage.text.ilike(f"%{_escape(w)}%", escape="\\") for w in words))
        articles = session.scalars(
            select(Article)
            .where(
                Article.status == ArticleStatus.stored,
                or_(Article.id.in_(found), *(Article.title.ilike(f"%{_escape(w)}%", escape="\\") for w in words)),
            )
            .order_by(Article.published.desc().nulls_last(), Article.id.desc())
            .limit(limit)
        ).all()
        hits = []
        for article in articles:
            text = next((p.text for p in article.passages if all(w.lower() in p.text.lower() for w in words)), None)
            text = text or (article.passages[0].text if article.passages else "")
            source = session.get(Article, article.duplicate_of_id) if article.duplicate_of_id else None
            hits.append(Hit(_copy(article), text[:300], source.url if source else None))
        return hits


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
