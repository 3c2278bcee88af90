"""Stored articles as JSON Lines: one article a line, passages with where they first appeared."""

from __future__ import annotations

import json
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, selectinload

from ingest.db import open_store, reading
from ingest.models import Article, ArticleStatus, Passage

_CHUNK = 200


def _first_urls(session: Session, passage_ids: set[int]) -> dict[int, str]:
    """Passage id → URL of the article that stored it first."""
    if not passage_ids:
        return {}
    return dict(
        session.execute(
            select(Passage.id, Article.url).join(Article, Article.id == Passage.article_id).where(Passage.id.in_(passage_ids))
        ).all()
    )


def article_record(article: Article, first_urls: dict[int, str]) -> dict[str, Any]:
    """One export line; a site's template passages (see ``ingest.dedup``) are left out."""
    passages = [p for p in article.passages if not p.template]
    return {
        "url": article.url,
        "title": article.title,
        "published": article.published.isoformat() if article.published else None,
        "source": article.source,
        "author": article.author,
        "language": article.language,
        "site_name": article.site_name,
        "text": "\n".join(p.text for p in passages),
        "duplicate_of": article.duplicate_of.url if article.duplicate_of else None,
        "passages": [
            {"text": p.text, "duplicate_of": first_urls.get(p.duplicate_of_id) if p.duplicate_of_id else None}
            for p in passages
        ],
    }


def export_articles(db_url: str, out: IO[str]) -> int:
    """Write every stored article, oldest first, one short read transaction per chunk; returns how many."""
    engine = open_store(db_url)
    count = 0
    last_id = 0
    duplicate = aliased(Article)
    while True:
        with reading(engine) as session:
            articles = session.scalars(
                select(Article)
                .where(Article.status == ArticleStatus.stored, Article.id > last_id)
                .order_by(Article.id)
                .limit(_CHUNK)
                .options(selectinload(Article.passages), selectinload(Article.duplicate_of.of_type(duplicate)))
            ).all()
            if not articles:
                return count
            first_urls = _first_urls(session, {p.duplicate_of_id for a in articles for p in a.passages if p.duplicate_of_id})
            records = [article_record(article, first_urls) for article in articles]
            last_id = articles[-1].id
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += len(records)
