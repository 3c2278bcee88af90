"""Bring your own corpus: ``ingest dedup --input docs.jsonl``.

Each input line is ``{"id": ..., "text": ...}`` (passages separated by newlines;
an optional ``"site"`` groups documents for template detection). Documents are
stored as articles with the URL ``urn:ingest-dedup:<id>`` and go through the same
engine and index as the pipeline's articles, in file order, so an archive can be
deduplicated on its own or pre-loaded for new articles to be checked against.
Each output line is ``{"id", "duplicate_of", "passages": [{"text", "duplicate_of"}]}``,
where a reference is the earlier document's id (or an article's URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import IO, Any
from urllib.parse import quote, unquote

from sqlalchemy import Engine, select
from sqlalchemy.orm import aliased

from ingest.db import open_store, reading, transaction
from ingest.dedup import DedupStats, deduplicate_pending
from ingest.errors import UserError
from ingest.models import Article, ArticleStatus, Passage
from ingest.passages import norm_hash, normalize, split_passages
from ingest.settings import DedupSettings
from ingest.store import insert_ignore

PREFIX = "urn:ingest-dedup:"
_CHUNK = 2000  # documents per database round (and dedup batch)


def doc_url(doc_id: Any) -> str:
    """A URL for a document id that keeps its JSON type: ``…:i:42`` or ``…:s:a%2Fb``."""
    if isinstance(doc_id, bool) or not isinstance(doc_id, (int, str)):
        raise ValueError("id must be a string or an integer")
    return f"{PREFIX}{'i' if isinstance(doc_id, int) else 's'}:{quote(str(doc_id), safe='')}"


def reference(url: str) -> Any:
    """The id a document URL was made from; any other URL as it is."""
    if not url.startswith(PREFIX):
        return url
    kind, _, value = url[len(PREFIX) :].partition(":")
    return int(value) if kind == "i" else unquote(value)


def _documents(lines: Iterable[str]) -> Iterator[tuple[str, str, str | None]]:
    """(url, text, site) per input line; a malformed line, or an id given again with
    another text, stops with its line number."""
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            if not isinstance(doc, dict) or "id" not in doc or not isinstance(doc.get("text"), str):
                raise ValueError('expected an object with "id" and "text"')
            url, site = doc_url(doc["id"]), doc.get("site")
            if seen.setdefault(url, hash(doc["text"])) != hash(doc["text"]):
                raise ValueError(f"id {doc['id']!r} appeared before with another text")
            yield url, doc["text"], site if isinstance(site, str) else None
        except ValueError as exc:
            raise UserError(f"input line {number}: {exc}") from None


def _store(engine: Engine, docs: list[tuple[str, str, str | None]]) -> None:
    """Documents not seen before become extracted articles with their passages."""
    now = datetime.now(timezone.utc)
    with transaction(engine) as session:
        urls = [url for url, _text, _site in docs]
        known = set(session.scalars(select(Article.url).where(Article.url.in_(urls))))
        fresh = {url: (text, site) for url, text, site in docs if url not in known}
        insert_ignore(
            session,
            Article,
            [
                {"url": url, "raw_url": url, "source": "ingest dedup", "status": ArticleStatus.extracted, "attempts": 0,
                 "discovered_at": now, "extracted_at": now, "site_name": site}
                for url, (_text, site) in fresh.items()
            ],
        )
        ids = dict(session.execute(select(Article.url, Article.id).where(Article.url.in_(list(fresh)))).all())
        rows = [
            {"article_id": ids[url], "position": position, "text": passage, "norm_hash": norm_hash(normalize(passage))}
            for url, (text, _site) in fresh.items()
            for position, passage in enumerate(split_passages(text))
        ]
        if rows:
            session.execute(Passage.__table__.insert(), rows)


def _decisions(engine: Engine, urls: list[str]) -> Iterator[dict[str, Any]]:
    first = aliased(Passage)
    source = aliased(Article)
    with reading(engine) as session:
        articles = dict(
            session.execute(
                select(Article.url, source.url).outerjoin(source, source.id == Article.duplicate_of_id).where(Article.url.in_(urls))
            ).all()
        )
        passages: dict[str, list[dict[str, Any]]] = {url: [] for url in urls}
        for url, text, origin in session.execute(
            select(Article.url, Passage.text, source.url)
            .join(Passage, Passage.article_id == Article.id)
            .outerjoin(first, first.id == Passage.duplicate_of_id)
            .outerjoin(source, source.id == first.article_id)
            .where(Article.url.in_(urls))
            .order_by(Article.id, Passage.position)
        ):
            passages[url].append({"text": text, "duplicate_of": reference(origin) if origin else None})
    for url in urls:
        duplicate_of = articles.get(url)
        yield {"id": reference(url), "duplicate_of": reference(duplicate_of) if duplicate_of else None, "passages": passages[url]}


def dedup_jsonl(db_url: str, lines: Iterable[str], out: IO[str], settings: DedupSettings) -> DedupStats:
    """Deduplicate a JSON Lines corpus in file order; write one decision line per document."""
    engine = open_store(db_url)
    stats = DedupStats()
    batch: list[tuple[str, str, str | None]] = []

    def flush() -> None:
        _store(engine, batch)
        stats.add(deduplicate_pending(engine, settings))
        for decision in _decisions(engine, [url for url, _text, _site in batch]):
            out.write(json.dumps(decision, ensure_ascii=False) + "\n")
        batch.clear()

    for doc in _documents(lines):
        batch.append(doc)
        if len(batch) >= _CHUNK:
            flush()
    if batch:
        flush()
    return stats
