"""Near-duplicate removal against the persistent index in the database.

Articles waiting in ``extracted`` are taken in publication order, a batch per
transaction under the dedup lock, so that concurrent workers never race and
"first appearance" means the same thing on every run. For each passage:

1. an exact match of its normal form with a stored first appearance, else
2. LSH candidates (shared band keys) verified by their exact shingle Jaccard,
   the best at or above ``passage_threshold`` winning.

A passage that matches is linked to that first appearance; one that does not
becomes a first appearance and enters the index.

A passage that one site repeats at the head or foot of several of its articles
(``template_min_articles``) is that site's template text: a bio, a disclaimer,
a "follow us" line. It is flagged and left out of the articles' text. Copies on
other sites never count, so a syndicated story is not a template.

Finally, an article whose text is mostly (``article_threshold`` of its
characters, in at least two passages) passages first stored in one earlier
article is marked as that article's duplicate; template passages do not count.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.orm import Session, selectinload

from ingest.counts import Counts
from ingest.db import lock, transaction
from ingest.errors import UserError
from ingest.minhash import Sketcher
from ingest.models import Article, ArticleStatus, IndexMeta, LshKey, Passage
from ingest.passages import jaccard, normalize, shingles
from ingest.settings import DedupSettings
from ingest.urls import host_of

MAX_CANDIDATES = 50  # verified per passage, most shared bands first
_CHUNK = 500  # values per IN (...) list
_HEAD, _FOOT = 2, 3  # template text sits among an article's first two or last three passages
_AT_EDGES = 0.75  # share of a template's copies that must sit there

Site = tuple[str, str]


def site_of(url: str, site_name: str | None) -> Site:
    """Host and declared site name: outlets sharing a host (or a CDN) stay apart."""
    return host_of(url), (site_name or "").casefold()


@dataclass
class DedupStats(Counts):
    articles_stored: int = 0
    duplicate_articles: int = 0
    passages_stored: int = 0
    duplicate_passages: int = 0
    template_passages: int = 0


@dataclass
class _Original:
    """A first appearance: stored earlier, or decided earlier in this batch."""

    passage_id: int
    article_id: int
    site: Site
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
                select(Passage.norm_hash, Passage.id, Passage.article_id, Article.url, Article.site_name, Passage.text)
                .join(Article, Article.id == Passage.article_id)
                .where(
                    Passage.norm_hash.in_(chunk),
                    Passage.duplicate_of_id.is_(None),
                    Article.status == ArticleStatus.stored,
                )
                .order_by(Passage.id)
            )
            for norm_hash, passage_id, article_id, url, site_name, text in rows:
                found.setdefault(norm_hash, _Original(passage_id, article_id, site_of(url, site_name), text))
        return found

    def _stored_candidates(self, keys: Sequence[int]) -> dict[int, list[_Original]]:
        by_id: dict[int, _Original] = {}
        by_key: dict[int, list[_Original]] = defaultdict(list)
        for chunk in _chunks(sorted(set(keys))):
            rows = self.session.execute(
                select(LshKey.key, Passage.id, Passage.article_id, Article.url, Article.site_name, Passage.text)
                .join(Passage, Passage.id == LshKey.passage_id)
                .join(Article, Article.id == Passage.article_id)
                .where(LshKey.key.in_(chunk))
            )
            for key, passage_id, article_id, url, site_name, text in rows:
                original = by_id.setdefault(passage_id, _Original(passage_id, article_id, site_of(url, site_name), text))
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

    def _templates(self, originals: set[int]) -> set[int]:
        """Flag, for each first appearance, the copies one site repeats at the edges of
        ``template_min_articles`` or more of its articles; return the flagged passage ids."""
        rows: list[tuple[int, int | None, int, int, str, str | None]] = []
        for chunk in _chunks(sorted(originals)):
            rows += self.session.execute(
                select(Passage.id, Passage.duplicate_of_id, Passage.position, Article.id, Article.url, Article.site_name)
                .join(Article, Article.id == Passage.article_id)
                .where(or_(Passage.id.in_(chunk), Passage.duplicate_of_id.in_(chunk)))
            ).all()
        sizes = dict(
            self.session.execute(
                select(Passage.article_id, func.count())
                .where(Passage.article_id.in_({row[3] for row in rows}))
                .group_by(Passage.article_id)
            ).all()
        )
        groups: dict[tuple[int, Site], list[tuple[int, int, bool]]] = defaultdict(list)
        for passage_id, duplicate_of, position, article_id, url, site_name in rows:
            at_edge = position < _HEAD or position >= sizes[article_id] - _FOOT
            groups[(duplicate_of or passage_id, site_of(url, site_name))].append((passage_id, article_id, at_edge))
        flagged: set[int] = set()
        for copies in groups.values():
            articles = {article_id for _, article_id, _ in copies}
            edges = sum(at_edge for _, _, at_edge in copies)
            if len(articles) >= self.settings.template_min_articles and edges >= _AT_EDGES * len(copies):
                flagged.update(passage_id for passage_id, _, _ in copies)
        if flagged:
            self.session.execute(
                update(Passage).where(Passage.id.in_(flagged)).values(template=True),
                execution_options={"synchronize_session": False},
            )
        return flagged

    def process(self, articles: Sequence[Article]) -> DedupStats:
        """Decide every passage of ``articles`` (in order), flag site templates, decide
        article duplicates, then index the first appearances."""
        s = self.settings
        passages = [passage for article in articles for passage in article.passages]
        shingle_sets = {p.id: shingles(normalize(p.text), s.shingle_size) for p in passages}
        near = [p for p in passages if len(normalize(p.text)) >= s.min_near_chars]
        keys = dict(zip((p.id for p in near), self.sketcher.band_keys([shingle_sets[p.id] for p in near])))

        exact = self._stored_exact([p.norm_hash for p in passages])
        by_key = self._stored_candidates([key for passage_keys in keys.values() for key in passage_keys])
        originals = {o.passage_id: o for key_list in by_key.values() for o in key_list}
        new_keys: list[dict[str, int]] = []
        matches: dict[int, _Original] = {}  # passage id → the first appearance it repeats
        same_site: set[int] = set()  # first appearances repeated on their own site in this batch
        stats = DedupStats()

        for article in articles:
            site = site_of(article.url, article.site_name)
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
                    matches[passage.id] = original
                    stats.duplicate_passages += 1
                    if original.site == site and original.article_id != article.id:
                        same_site.add(original.passage_id)
                    continue
                original = _Original(passage.id, article.id, site, passage.text, shingle_sets[passage.id])
                exact.setdefault(passage.norm_hash, original)
                originals[passage.id] = original
                for key in keys.get(passage.id, ()):
                    by_key.setdefault(key, []).append(original)
                    new_keys.append({"key": key, "passage_id": passage.id})

        self.session.flush()
        templates = self._templates(same_site) if same_site else set()
        stats.template_passages = len(templates)
        now = datetime.now(timezone.utc)
        for article in articles:
            if self._is_duplicate(article, keys, matches, templates):
                stats.duplicate_articles += 1
            article.status = ArticleStatus.stored
            article.stored_at = now
            stats.articles_stored += 1
        if new_keys:
            self.session.execute(insert(LshKey), new_keys)
        return stats

    def _is_duplicate(
        self, article: Article, keys: dict[int, list[int]], matches: dict[int, _Original], templates: set[int]
    ) -> bool:
        """Mostly passages first stored in one earlier article. Only passages long enough for
        near matching count, templates do not, and two must match (one when the article has
        a single one): a shared footer or one quoted paragraph does not make a copy."""
        counted = [p for p in article.passages if p.id in keys and p.id not in templates]
        total = sum(len(p.text) for p in counted)
        shared: Counter[int] = Counter()  # characters first stored in each earlier article
        matched: Counter[int] = Counter()
        for passage in counted:
            original = matches.get(passage.id)
            if original is not None and original.article_id != article.id:
                shared[original.article_id] += len(passage.text)
                matched[original.article_id] += 1
        if not shared or not total:
            return False
        source_id, chars = min(shared.items(), key=lambda item: (-item[1], item[0]))
        if chars / total < self.settings.article_threshold or matched[source_id] < min(2, len(counted)):
            return False
        article.duplicate_of_id = source_id
        article.duplicate_share = round(chars / total, 4)
        return True


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
