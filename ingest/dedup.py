"""Near-duplicate removal against the persistent index in the database.

Articles waiting in ``extracted`` are taken in publication order, a batch per
transaction under the dedup lock, so that concurrent workers never race and
"first appearance" means the same thing on every run. For each passage:

1. an exact match of its normal form with a stored first appearance, else
2. LSH candidates (shared band keys) verified by their exact shingle Jaccard,
   the best at or above ``passage_threshold`` winning.

A passage that matches is linked to that first appearance; one that does not
becomes a first appearance and enters the index. An article whose text is
mostly (``article_threshold`` of its characters) passages first stored in one
earlier article is marked as that article's duplicate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, selectinload

from ingest.counts import Counts
from ingest.db import lock, transaction
from ingest.errors import UserError
from ingest.minhash import Sketcher
from ingest.models import Article, ArticleStatus, IndexMeta, LshKey, Passage
from ingest.passages import jaccard, normalize, shingles
from ingest.settings import DedupSettings

MAX_CANDIDATES = 50  # verified per passage, most shared bands first
_CHUNK = 500  # values per IN (...) list


@dataclass
class DedupStats(Counts):
    articles_stored: int = 0
    duplicate_articles: int = 0
    passages_stored: int = 0
    duplicate_passages: int = 0


@dataclass
class _Original:
    """A first appearance: stored earlier, or decided earlier in this batch."""

    passage_id: int
    article_id: int
    text: str
    _shingles: set[bytes] | None = field(default=None, repr=False)

    def shingles(self, size: int) -> set[bytes]:
        if self._shingles is None:
            self._shingles = shingles(normalize(self.text), size)
        return self._shingles


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def check_index_params(session: Session, sketcher: Sketcher) -> None:
    """Record the index parameters on first use; refuse an index built with others."""
    stored = session.get(IndexMeta, "minhash")
    if stored is None:
        session.add(IndexMeta(name="minhash", value=sketcher.params))
        session.flush()
    elif stored.value != sketcher.params:
        changed = ", ".join(
            f"{key} {stored.value.get(key)!r} → {value!r}"
            for key, value in sketcher.params.items()
            if stored.value.get(key) != value
        )
        raise UserError(
            f"the passage index in this database was built with other MinHash parameters ({changed}); "
            "restore the settings it was built with, or use a new database"
        )


class Deduplicator:
    def __init__(self, session: Session, settings: DedupSettings) -> None:
        self.session = session
        self.settings = settings
        self.sketcher = Sketcher(settings)

    def _stored_exact(self, hashes: Sequence[int]) -> dict[int, _Original]:
        found: dict[int, _Original] = {}
        for chunk in _chunks(sorted(set(hashes))):
            rows = self.session.execute(
                select(Passage.norm_hash, Passage.id, Passage.article_id, Passage.text)
                .join(Article, Article.id == Passage.article_id)
                .where(
                    Passage.norm_hash.in_(chunk),
                    Passage.duplicate_of_id.is_(None),
                    Article.status == ArticleStatus.stored,
                )
                .order_by(Passage.id)
            )
            for norm_hash, passage_id, article_id, text in rows:
                found.setdefault(norm_hash, _Original(passage_id, article_id, text))
        return found

    def _stored_candidates(self, keys: Sequence[int]) -> dict[int, list[_Original]]:
        by_id: dict[int, _Original] = {}
        by_key: dict[int, list[_Original]] = defaultdict(list)
        for chunk in _chunks(sorted(set(keys))):
            rows = self.session.execute(
                select(LshKey.key, Passage.id, Passage.article_id, Passage.text)
                .join(Passage, Passage.id == LshKey.passage_id)
                .where(LshKey.key.in_(chunk))
            )
            for key, passage_id, article_id, text in rows:
                original = by_id.setdefault(passage_id, _Original(passage_id, article_id, text))
                by_key[key].append(original)
        return by_key

    def _best_match(
        self, own: set[bytes], candidates: Counter[int], originals: dict[int, _Original]
    ) -> tuple[_Original, float] | None:
        best: tuple[_Original, float] | None = None
        for passage_id, _hits in candidates.most_common(MAX_CANDIDATES):
            original = originals[passage_id]
            similarity = jaccard(own, original.shingles(self.settings.shingle_size))
            if similarity < self.settings.passage_threshold:
                continue
            if best is None or similarity > best[1] or (similarity == best[1] and passage_id < best[0].passage_id):
                best = (original, similarity)
        return best

    def process(self, articles: Sequence[Article]) -> DedupStats:
        """Decide every passage of ``articles`` (in order), then index the first appearances."""
        s = self.settings
        passages = [passage for article in articles for passage in article.passages]
        shingle_sets = {p.id: shingles(normalize(p.text), s.shingle_size) for p in passages}
        near = [p for p in passages if len(normalize(p.text)) >= s.min_near_chars]
        keys = dict(zip((p.id for p in near), self.sketcher.band_keys([shingle_sets[p.id] for p in near])))

        exact = self._stored_exact([p.norm_hash for p in passages])
        by_key = self._stored_candidates([key for passage_keys in keys.values() for key in passage_keys])
        originals = {o.passage_id: o for key_list in by_key.values() for o in key_list}
        new_keys: list[dict[str, int]] = []
        stats = DedupStats()
        now = datetime.now(timezone.utc)

        for article in articles:
            shared: Counter[int] = Counter()  # characters first stored in each earlier article
            matched: Counter[int] = Counter()  # passages first stored there
            for passage in article.passages:
                match: tuple[_Original, float] | None = None
                if passage.norm_hash in exact:
                    match = (exact[passage.norm_hash], 1.0)
                elif passage.id in keys:
                    candidates = Counter(o.passage_id for key in keys[passage.id] for o in by_key.get(key, ()))
                    match = self._best_match(shingle_sets[passage.id], candidates, originals)
                stats.passages_stored += 1
                if match is not None:
                    original, similarity = match
                    passage.duplicate_of_id = original.passage_id
                    passage.similarity = round(similarity, 4)
                    stats.duplicate_passages += 1
                    if original.article_id != article.id and passage.id in keys:
                        shared[original.article_id] += len(passage.text)
                        matched[original.article_id] += 1
                    continue
                original = _Original(passage.id, article.id, passage.text, shingle_sets[passage.id])
                exact.setdefault(passage.norm_hash, original)
                originals[passage.id] = original
                for key in keys.get(passage.id, ()):
                    by_key.setdefault(key, []).append(original)
                    new_keys.append({"key": key, "passage_id": passage.id})

            # Only passages long enough for near-duplicate matching count, and at least two of
            # them must match (one when the article has a single one): a shared standard
            # footer or one quoted paragraph does not make an article a copy.
            long_passages = [p for p in article.passages if p.id in keys]
            total = sum(len(p.text) for p in long_passages)
            if shared and total:
                source_id, chars = min(shared.items(), key=lambda item: (-item[1], item[0]))
                if chars / total >= s.article_threshold and matched[source_id] >= min(2, len(long_passages)):
                    article.duplicate_of_id = source_id
                    article.duplicate_share = round(chars / total, 4)
                    stats.duplicate_articles += 1
            article.status = ArticleStatus.stored
            article.stored_at = now
            stats.articles_stored += 1

        self.session.flush()
        if new_keys:
            self.session.execute(insert(LshKey), new_keys)
        return stats


def _order() -> tuple:
    return (func.coalesce(Article.published, Article.feed_published, Article.discovered_at), Article.id)


def deduplicate_pending(engine: Engine, settings: DedupSettings, batch_size: int = 200) -> DedupStats:
    """Deduplicate every extracted article, one locked transaction per batch."""
    total = DedupStats()
    while True:
        with transaction(engine) as session:
            lock(session, "ingest-dedup")
            deduplicator = Deduplicator(session, settings)
            check_index_params(session, deduplicator.sketcher)
            articles = session.scalars(
                select(Article)
                .where(Article.status == ArticleStatus.extracted)
                .order_by(*_order())
                .limit(batch_size)
                .options(selectinload(Article.passages))
            ).all()
            if not articles:
                return total
            total.add(deduplicator.process(articles))
