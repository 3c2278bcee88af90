"""Near-duplicate removal against the persistent index in the database.

Articles waiting in ``extracted`` are taken in publication order, a batch per
transaction under the dedup lock, so that concurrent workers never race and
"first appearance" means the same thing on every run. A batch's shingles,
signatures and band keys are computed at once (``ingest.minhash``), its
candidates fetched in a few queries, and its decisions written in bulk.

For each passage, in order:

1. an exact match of its normal form with a stored first appearance, else
2. LSH candidates (shared band keys) verified by their exact shingle Jaccard,
   the best at or above ``passage_threshold`` winning.

A passage that matches is linked to that first appearance; one that does not
becomes a first appearance and enters the index.

A passage that one site repeats at the head or foot of several of its articles
(``template_min_articles``) is that site's template text: a bio, a disclaimer,
a "follow us" line. It is flagged and left out of the articles' text. Copies on
other sites never count, so a syndicated story is not a template.

Finally, an article is marked as the duplicate of the earlier article whose first
appearances it repeats most, when the two texts' similarity (shared characters
over the characters of both, a Jaccard estimate) reaches ``article_threshold``
and at least two passages match; templates and passages too short for near
matching do not count.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Engine, Select, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ingest.band_index import ARTICLES, PASSAGES, Postings, distinct, index_rows
from ingest.counts import Counts
from ingest.db import AMONG_CHUNK, among, for_index, lock, transaction, unselective, update_by_id
from ingest.errors import UserError
from ingest.minhash import Sketcher
from ingest.models import DEDUP_ORDER, WAITING_FOR_DEDUP, Article, ArticleStatus, IndexMeta, Passage
from ingest.passages import jaccard, normalize
from ingest.settings import DedupSettings
from ingest.urls import host_of

MAX_CANDIDATES = 50  # verified per passage, most shared bands first
_CHUNK = 500  # values per IN (...) list (bound as one JSON or array parameter: one statement text, whatever the length)
_HEAD, _FOOT = 2, 3  # template text sits among an article's first two or last three passages
_AT_EDGES = 0.75  # share of a template's copies that must sit there
_SHORTLIST = 3  # candidate articles compared exactly per article
_COMPARED = 250  # articles of a batch whose candidates' texts are read at once

Site = tuple[str, str]


def site_of(url: str, site_name: str | None) -> Site:
    """Host and declared site name: outlets sharing a host (or a CDN) stay apart. A
    document without a host (``ingest dedup`` input) is its own site unless it names one."""
    host = host_of(url)
    if not host:
        return ("", site_name.casefold()) if site_name else (url, "")
    return host, (site_name or "").casefold()


@dataclass
class DedupStats(Counts):
    articles_stored: int = 0
    duplicate_articles: int = 0
    passages_stored: int = 0
    duplicate_passages: int = 0
    template_passages: int = 0


@dataclass(frozen=True)
class _Home:
    """An article's URL and declared site name; its site is worked out only when a
    passage matches (most candidates do not), once per article."""

    url: str
    site_name: str | None

    @functools.cached_property
    def site(self) -> Site:
        return site_of(self.url, self.site_name)


@dataclass
class _Original:
    """A first appearance: stored earlier, or decided earlier in this batch."""

    passage_id: int
    article_id: int
    home: _Home
    text: str = ""  # read for near matching only: an exact match needs no text
    shingles: np.ndarray | None = field(default=None, repr=False)


@dataclass
class _Doc:
    """An article of the batch: its passages in order (id, text, norm_hash)."""

    id: int
    home: _Home
    passages: list[tuple[int, str, int]]


def _chunks(values: Sequence[int], size: int = _CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def check_index_params(session: Session, sketcher: Sketcher) -> None:
    """Record the index parameters on first use; refuse an index built with others."""
    stored, params = session.get(IndexMeta, "minhash"), sketcher.params
    if stored is None:
        session.add(IndexMeta(name="minhash", value=params))
        session.flush()
    elif stored.value != params:
        differ = [key for key, value in params.items() if stored.value.get(key) != value]
        changed = ", ".join(f"{key} {stored.value.get(key)!r} → {params[key]!r}" for key in differ)
        # Settings can be put back; the hashing of another version of the code cannot.
        way_back = "restore the settings it was built with, or " if set(differ) <= set(DedupSettings.model_fields) else ""
        raise UserError(
            f"the passage index in this database was built with other MinHash parameters ({changed}); "
            f"{way_back}rebuild the index with these: `ingest reindex`"
        )


class Deduplicator:
    def __init__(self, session: Session, settings: DedupSettings) -> None:
        self.session = session
        self.settings = settings
        self.sketcher = Sketcher(settings)

    # --- reading the index ----------------------------------------------

    def _of_stored_articles(self, *columns: ColumnElement[Any]) -> Select[Any]:
        """``columns`` of passages with their article's URL and site name, for stored articles
        only: the join goes from the passages to each one's article by primary key
        (``unselective`` keeps SQLite's planner from starting at the status index instead:
        a scan of every stored article)."""
        return (
            select(*columns, Article.url, Article.site_name)
            .join(Article, Article.id == Passage.article_id)
            .where(unselective(self.session, Article.status == ArticleStatus.stored))
        )

    def _stored_exact(self, hashes: Iterable[int]) -> dict[int, _Original]:
        """Stored first appearances with the same normal form.

        Articles still waiting in the backlog have passages that look like first
        appearances (nothing links them yet), and a backlog of copies holds many per
        hash: they are left out in SQL, so what is read follows the batch, not the
        backlog (``_of_stored_articles``)."""
        rows: list[tuple[int, int, int, str, str | None]] = []
        for chunk in _chunks(sorted(set(hashes)), AMONG_CHUNK):
            # Copies are left out too (a template line has as many stored copies as the
            # site has articles), by an expression no index serves: "IS NULL" holds for
            # most rows and could lure a planner off the norm_hash index. Ids start at 1.
            rows += self.session.execute(
                self._of_stored_articles(Passage.norm_hash, Passage.id, Passage.article_id).where(
                    among(self.session, Passage.norm_hash, chunk), func.coalesce(Passage.duplicate_of_id, 0) == 0
                )
            ).all()
        homes: dict[int, _Home] = {}  # one per article: its site is worked out once
        found: dict[int, _Original] = {}
        for norm_hash, passage_id, article_id, url, site_name in sorted(rows, key=lambda row: row[1]):
            if norm_hash not in found:
                found[norm_hash] = _Original(passage_id, article_id, homes.setdefault(article_id, _Home(url, site_name)))
        return found

    def _stored_candidates(self, keys: np.ndarray) -> tuple[Postings, dict[int, _Original]]:
        """Stored first appearances sharing a band key: keys first (the index alone), then
        the few passages they name, with their articles (``_of_stored_articles``)."""
        hits = PASSAGES.lookup(self.session, keys)
        homes: dict[int, _Home] = {}  # one per article: its site is worked out once
        by_id: dict[int, _Original] = {}
        for chunk in _chunks(distinct(hits.ids).tolist(), AMONG_CHUNK):
            for pid, article_id, text, url, site_name in self.session.execute(
                self._of_stored_articles(Passage.id, Passage.article_id, Passage.text).where(among(self.session, Passage.id, chunk))
            ):
                by_id[pid] = _Original(pid, article_id, homes.setdefault(article_id, _Home(url, site_name)), text)
        return hits.kept(np.fromiter(by_id, dtype=np.int64, count=len(by_id))), by_id

    def _shingle(self, originals: list[_Original]) -> None:
        """Shingles of stored first appearances, for exact verification: one batch."""
        bounds, hashes = self.sketcher.shingles([normalize(o.text) for o in originals])
        for n, original in enumerate(originals):
            original.shingles = hashes[bounds[n] : bounds[n + 1]]

    def _best_match(
        self, own: np.ndarray, candidates: Counter[int], originals: dict[int, _Original]
    ) -> tuple[_Original, float] | None:
        best: tuple[_Original, float] | None = None
        for passage_id, _hits in candidates.most_common(MAX_CANDIDATES):
            original = originals[passage_id]
            assert original.shingles is not None
            similarity = jaccard(own, original.shingles)
            if similarity < self.settings.passage_threshold:
                continue
            if best is None or similarity > best[1] or (similarity == best[1] and passage_id < best[0].passage_id):
                best = (original, similarity)
        return best

    # --- deciding --------------------------------------------------------

    def process(self, docs: Sequence[_Doc]) -> DedupStats:
        """Decide every passage of ``docs`` (in order), flag site templates, decide
        article duplicates, index the first appearances, and write it all in bulk."""
        s = self.settings
        passages = [(doc, *p) for doc in docs for p in doc.passages]
        normalized = [normalize(text) for _doc, _id, text, _hash in passages]
        bounds, hashes = self.sketcher.shingles(normalized)
        near = np.fromiter((len(n) >= s.min_near_chars for n in normalized), dtype=bool, count=len(normalized))
        keys = self.sketcher.band_keys(self.sketcher.signatures(bounds, hashes))

        exact = self._stored_exact(h for _doc, _id, _text, h in passages)
        postings, originals = self._stored_candidates(keys[near])
        self._shingle(list(originals.values()))
        matches: dict[int, tuple[_Original, float]] = {}  # passage id → first appearance, similarity
        same_site: set[int] = set()  # first appearances repeated on their own site in this batch
        stats = DedupStats(passages_stored=len(passages))
        ids = np.fromiter((pid for _doc, pid, _t, _h in passages), dtype=np.int64, count=len(passages))
        alone = self._alone(passages, keys, near, exact, postings.keys)
        new_keys = [index_rows(keys[alone & near], ids[alone & near])]

        # Passages that share nothing with the index or the rest of the batch are first
        # appearances as they stand; the others are decided one by one, in order.
        for index in np.flatnonzero(~alone).tolist():
            doc, passage_id, text, norm_hash = passages[index]
            own = hashes[bounds[index] : bounds[index + 1]]
            match: tuple[_Original, float] | None = None
            if norm_hash in exact:
                match = (exact[norm_hash], 1.0)
            elif near[index]:
                found = postings.under(keys[index])
                match = self._best_match(own, Counter(found), originals) if found else None
            if match is not None:
                matches[passage_id] = match
                if match[0].home.site == doc.home.site and match[0].article_id != doc.id:
                    same_site.add(match[0].passage_id)
                continue
            original = _Original(passage_id, doc.id, doc.home, text, own)
            exact.setdefault(norm_hash, original)
            originals[passage_id] = original
            if near[index]:
                postings.add(keys[index], passage_id)
                new_keys.append(index_rows(keys[index : index + 1], ids[index : index + 1]))

        update_by_id(
            self.session, Passage.__table__, ["duplicate_of_id", "similarity"],  # type: ignore[arg-type]
            [(pid, o.passage_id, round(sim, 4)) for pid, (o, sim) in sorted(matches.items())],
        )
        stats.duplicate_passages = len(matches)
        templates, stats.template_passages = self._templates(same_site) if same_site else (set(), 0)
        normal_forms = {pid: form for (_doc, pid, _text, _hash), form in zip(passages, normalized)}
        duplicates, article_keys = self._article_duplicates(docs, normal_forms, matches, templates)
        stats.duplicate_articles = len(duplicates)
        self._store(docs, duplicates, distinct(np.concatenate(new_keys)), article_keys)
        stats.articles_stored = len(docs)
        return stats

    @staticmethod
    def _alone(
        passages: list[tuple[_Doc, int, str, int]], keys: np.ndarray, near: np.ndarray,
        exact: dict[int, _Original], stored_keys: np.ndarray,
    ) -> np.ndarray:
        """Passages sharing no band key and no normal form with the index or with another
        passage of the batch: most of a batch, settled without a Python step per key."""
        hashes = np.fromiter((h for _doc, _id, _text, h in passages), dtype=np.int64, count=len(passages))
        values, counts = np.unique(hashes, return_counts=True)
        alone = np.isin(hashes, list(exact), invert=True) & (counts[np.searchsorted(values, hashes)] == 1)
        flat = keys[near].ravel()
        if flat.size:
            values, counts = np.unique(flat, return_counts=True)
            shared = np.isin(flat, stored_keys) | (counts[np.searchsorted(values, flat)] > 1)
            alone[np.flatnonzero(near)] &= ~shared.reshape(-1, keys.shape[1]).any(axis=1)
        return alone

    def _templates(self, originals: set[int]) -> tuple[set[int], int]:
        """Flag, for each first appearance, the copies one site repeats at the edges of
        ``template_min_articles`` or more of its articles; return the passage ids that are
        template text and how many of them were not flagged before (earlier batches flagged
        the others, and counting them again made the run's total several times too high)."""
        rows: list[tuple[int, int | None, int, int, str, str | None]] = []
        for chunk in _chunks(sorted(originals)):
            rows += self.session.execute(
                select(Passage.id, Passage.duplicate_of_id, Passage.position, Article.id, Article.url, Article.site_name)
                .join(Article, Article.id == Passage.article_id)
                .where(or_(among(self.session, Passage.id, chunk), among(self.session, Passage.duplicate_of_id, chunk)))
            ).all()
        sizes = dict(
            self.session.execute(
                select(Passage.article_id, func.count())
                .where(among(self.session, Passage.article_id, sorted({row[3] for row in rows})))
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
        if not flagged:
            return flagged, 0
        newly = self.session.execute(
            update(Passage)
            .where(among(self.session, Passage.id, sorted(flagged)), Passage.template.is_(False))
            .values(template=True),
            execution_options={"synchronize_session": False},
        )
        return flagged, newly.rowcount  # type: ignore[attr-defined]

    def _article_duplicates(
        self, docs: Sequence[_Doc], normalized: dict[int, str], matches: dict[int, tuple[_Original, float]], templates: set[int]
    ) -> tuple[dict[int, tuple[int, float]], np.ndarray]:
        """article id → (earlier article it duplicates, similarity); and the article index
        rows (``index_rows``) of the batch's articles that are no one's copy.

        Candidates come two ways. Whole texts have MinHash band keys of their own
        (``article_keys``), so a copy is found however its paragraphs were split, merged
        or wrapped. And an article repeating passages meets the earlier articles holding
        copies of those passages' classes (a class is the first appearance a passage
        repeats), even where each line first appeared elsewhere, as lines of market
        tables do. The best few are compared exactly: the Jaccard similarity of the two
        texts' shingles, templates left out, must reach ``article_threshold``."""
        order = {doc.id: n for n, doc in enumerate(docs)}
        bounds, hashes = self.sketcher.shingles(
            [" ".join(normalized[pid] for pid, _text, _h in doc.passages if pid not in templates) for doc in docs]
        )
        article_shingles = {doc.id: hashes[bounds[n] : bounds[n + 1]] for n, doc in enumerate(docs)}
        keys = self.sketcher.band_keys(self.sketcher.signatures(bounds, hashes))
        postings = ARTICLES.lookup(self.session, keys)
        shortlist = self._shared_classes(docs, matches, templates)
        for n, doc in enumerate(docs):  # articles of the batch, earlier ones first, meet through their keys too
            found = postings.under(keys[n])
            if found:
                shortlist.setdefault(doc.id, Counter()).update(found)
            postings.add(keys[n], doc.id)
        # Only the best few candidates of each article are compared, so only their texts are
        # read: a story copied hundreds of times in the backlog must not bring every copy
        # into memory (peak memory stays flat however long the candidate lists grow).
        best = {doc_id: [a for a, _weight in candidates.most_common(_SHORTLIST)] for doc_id, candidates in shortlist.items()}
        # And a slice of the batch's articles at a time: in a batch of copies, every article
        # brings its originals' whole texts.
        found: dict[int, tuple[int, float]] = {}
        pending = list(best.items())
        for start in range(0, len(pending), _COMPARED):
            part = pending[start : start + _COMPARED]
            others = sorted({a for _doc_id, candidates in part for a in candidates} - set(order))
            texts = self._texts(set(others))
            bounds, hashes = self.sketcher.shingles([" ".join(normalize(p) for p in texts.get(a, [])) for a in others])
            theirs = {a: hashes[bounds[n] : bounds[n + 1]] for n, a in enumerate(others)}
            for doc_id, candidates in part:
                own = article_shingles[doc_id]
                scored = [(jaccard(own, article_shingles[a] if a in order else theirs[a]), a) for a in candidates]
                similarity, source = max(scored, key=lambda item: (item[0], -item[1]))
                if own.size and similarity >= self.settings.article_threshold:
                    found[doc_id] = (source, round(similarity, 4))
        indexed = [n for n, doc in enumerate(docs) if doc.id not in found and article_shingles[doc.id].size]
        return found, index_rows(keys[indexed], np.asarray([docs[n].id for n in indexed], dtype=np.int64))

    def _shared_classes(
        self, docs: Sequence[_Doc], matches: dict[int, tuple[_Original, float]], templates: set[int]
    ) -> dict[int, Counter[int]]:
        """article id → earlier articles holding copies of the passage classes it repeats,
        weighted by shared characters (at least two passages, or the article's only one)."""
        order = {doc.id: n for n, doc in enumerate(docs)}
        repeated = {matches[pid][0].passage_id for doc in docs for pid, _t, _h in doc.passages if pid in matches and pid not in templates}
        holders = self._class_holders(repeated) if repeated else {}
        shortlist: dict[int, Counter[int]] = {}
        for doc in docs:
            shared: Counter[int] = Counter()
            count: Counter[int] = Counter()
            passages = [(matches[pid][0].passage_id if pid in matches else pid, len(text)) for pid, text, _h in doc.passages if pid not in templates]
            for cls, length in passages:
                for article in holders.get(cls, ()):
                    if article != doc.id and order.get(article, -1) < order[doc.id]:
                        shared[article] += length
                        count[article] += 1
            eligible = Counter({a: chars for a, chars in shared.items() if count[a] >= min(2, len(passages))})
            if eligible:
                shortlist[doc.id] = eligible
        return shortlist

    def _texts(self, article_ids: set[int]) -> dict[int, list[str]]:
        """Each article's passages in order, templates left out."""
        texts: dict[int, list[str]] = defaultdict(list)
        for chunk in _chunks(sorted(article_ids)):
            for article_id, text in self.session.execute(
                select(Passage.article_id, Passage.text)
                .where(among(self.session, Passage.article_id, chunk), Passage.template.is_(False))
                .order_by(Passage.article_id, Passage.position)
            ):
                texts[article_id].append(text)
        return texts

    def _class_holders(self, classes: set[int]) -> dict[int, set[int]]:
        """class → articles holding a copy of it (templates left out)."""
        holders: dict[int, set[int]] = defaultdict(set)
        for chunk in _chunks(sorted(classes)):
            for passage_id, duplicate_of, article_id in self.session.execute(
                select(Passage.id, Passage.duplicate_of_id, Passage.article_id).where(
                    or_(among(self.session, Passage.id, chunk), among(self.session, Passage.duplicate_of_id, chunk)), Passage.template.is_(False)
                )
            ):
                holders[duplicate_of or passage_id].add(article_id)
        return holders

    def _store(
        self, docs: Sequence[_Doc], duplicates: dict[int, tuple[int, float]], new_keys: np.ndarray, article_keys: np.ndarray
    ) -> None:
        now = datetime.now(timezone.utc)
        for chunk in _chunks([doc.id for doc in docs]):
            self.session.execute(
                update(Article)
                .where(among(self.session, Article.id, chunk))
                .values(status=ArticleStatus.stored, stored_at=func.coalesce(Article.stored_at, now)),  # kept by ``rebuild``
                execution_options={"synchronize_session": False},
            )
        update_by_id(
            self.session, Article.__table__, ["duplicate_of_id", "duplicate_share"],  # type: ignore[arg-type]
            [(aid, source, share) for aid, (source, share) in sorted(duplicates.items())],
        )
        PASSAGES.add(self.session, new_keys)
        ARTICLES.add(self.session, distinct(article_keys))


def _load(session: Session, batch_size: int) -> list[_Doc]:
    """The next batch of extracted articles, with their passages, as plain data."""
    articles = session.execute(
        select(Article.id, Article.url, Article.site_name)
        .where(unselective(session, WAITING_FOR_DEDUP))
        .order_by(*DEDUP_ORDER)
        .limit(batch_size)
    ).all()
    passages: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    for chunk in _chunks([a.id for a in articles]):
        for article_id, pid, text, norm_hash in session.execute(
            select(Passage.article_id, Passage.id, Passage.text, Passage.norm_hash)
            .where(among(session, Passage.article_id, chunk))
            .order_by(Passage.article_id, Passage.position)
        ):
            passages[article_id].append((pid, text, norm_hash))
    return [_Doc(a.id, _Home(a.url, a.site_name), passages[a.id]) for a in articles]


def rebuild(engine: Engine, settings: DedupSettings) -> tuple[int, DedupStats]:
    """Deduplicate every stored article again with ``settings``: the way to an index with other
    parameters (the index refuses to mix them, ``check_index_params``). Every decision and the
    whole index are dropped in one transaction, which puts the stored articles back in the
    queue, so an interrupted rebuild is finished by the next run. Returns how many articles
    were queued again, and the deduplication's counts."""
    with transaction(engine) as session:
        lock(session, "ingest-dedup")
        PASSAGES.clear(session)
        ARTICLES.clear(session)
        session.execute(delete(IndexMeta).where(IndexMeta.name == "minhash"))
        check_index_params(session, Sketcher(settings))  # recorded at once: a worker still on the old ones is refused
        session.execute(
            update(Passage)
            .where(or_(Passage.duplicate_of_id.is_not(None), Passage.template.is_(True)))
            .values(duplicate_of_id=None, similarity=None, template=False),
            execution_options={"synchronize_session": False},
        )
        queued = session.execute(
            update(Article)
            .where(Article.status == ArticleStatus.stored)
            .values(status=ArticleStatus.extracted, duplicate_of_id=None, duplicate_share=None),
            execution_options={"synchronize_session": False},
        ).rowcount  # type: ignore[attr-defined]
    return queued, deduplicate_pending(engine, settings)


def deduplicate_pending(engine: Engine, settings: DedupSettings) -> DedupStats:
    """Deduplicate every extracted article, one locked transaction per ``batch_articles``."""
    total = DedupStats()
    while True:
        with transaction(engine) as session:
            lock(session, "ingest-dedup")
            for_index(session)
            deduplicator = Deduplicator(session, settings)
            check_index_params(session, deduplicator.sketcher)
            docs = _load(session, settings.batch_articles)
            if not docs:
                return total
            total.add(deduplicator.process(docs))
