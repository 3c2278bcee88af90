"""Deduplication speed and index size as the index grows, beside the plain datasketch loop.

Passages are made from Reuters-21578 sentences (two to four per passage, so
nearly all are new) with a tenth of them near-duplicates of earlier ones. The
store is filled through the engine itself up to each size; at each size the next
fresh passages (a probe of 5,000, or a quarter of the index if that is more) are
deduplicated and timed alone (their passages already stored, as extraction leaves
them), with the resident memory they add. The baseline
is datasketch used directly: per passage ``MinHash(num_perm=128)`` +
``update_batch`` over the same word 5-grams, then ``MinHashLSH.query`` and
``insert``, in memory.
"""

from __future__ import annotations

import random
from collections import deque
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psutil
from datasketch import MinHash, MinHashLSH
from sqlalchemy import Engine, func, select, text

from ingest.dedup import deduplicate_pending
from ingest.eval.dedup import reuters_documents
from ingest.models import Article, ArticleStatus, LshKey, Passage, RecentLshKey
from ingest.passages import norm_hash, normalize
from ingest.settings import DedupSettings

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
PER_ARTICLE = 5


def sentence_pool(folder: Path) -> list[str]:
    sentences = {s for doc in reuters_documents(folder) for p in doc["text"].split("\n") for s in _SENTENCE.split(p) if len(s.split()) >= 6}
    return sorted(sentences)


def passages(pool: list[str], count: int, seed: int) -> Iterator[str]:
    """``count`` passages of two to four newswire sentences, the same mix at every size.

    Each sentence has one word in every three replaced, so that no word 5-gram of the
    pool's sentence survives: drawn unchanged (or with two words replaced, as before
    2026-11-28), a million passages from a few tens of thousands of sentences share ever
    more sentences as the index grows (at a million indexed, 2.3 stored candidates to
    verify per passage, against 0.14 at 15,000), and the benchmark measured the pool
    running out instead of the index. At every size, one passage in ten repeats a recent
    passage with one word changed (a syndicated or re-filed copy), and one in twenty
    quotes a sentence of a recent passage (a candidate that verification turns down)."""
    rng = random.Random(seed)
    vocabulary = [w for sentence in pool[:5000] for w in sentence.split()]
    recent: deque[str] = deque(maxlen=1000)
    quotes: deque[str] = deque(maxlen=3000)
    for _ in range(count):
        if recent and rng.random() < 0.1:
            words = rng.choice(recent).split()
            words[rng.randrange(len(words))] = rng.choice(vocabulary)
            passage = " ".join(words)
        else:
            sentences = []
            for sentence in rng.sample(pool, rng.randint(2, 4)):
                words = sentence.split()
                for block in range(0, len(words), 3):  # every 5-word window holds a whole block
                    words[rng.randrange(block, min(block + 3, len(words)))] = rng.choice(vocabulary)
                sentences.append(" ".join(words))
            if quotes and rng.random() < 0.05:
                sentences[rng.randrange(len(sentences))] = rng.choice(quotes)
            quotes.extend(sentences)
            passage = " ".join(sentences)
        recent.append(passage)
        yield passage


def store_passages(engine: Engine, texts: list[str], label: str) -> None:
    """Texts as extracted articles of ``PER_ARTICLE`` passages, as extraction would leave them."""
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:
        first = connection.execute(select(func.coalesce(func.max(Article.id), 0))).scalar_one() + 1
        groups = [texts[i : i + PER_ARTICLE] for i in range(0, len(texts), PER_ARTICLE)]
        connection.execute(
            Article.__table__.insert(),
            [{"id": first + n, "url": f"urn:bench:{label}:{first + n}", "raw_url": "-", "source": "bench",
              "status": ArticleStatus.extracted.value, "attempts": 0, "discovered_at": now} for n in range(len(groups))],
        )
        connection.execute(
            Passage.__table__.insert(),
            [{"article_id": first + n, "position": k, "text": t, "norm_hash": norm_hash(normalize(t))}
             for n, group in enumerate(groups) for k, t in enumerate(group)],
        )


class _PeakMemory:
    """Highest resident memory above the starting level while the block runs (sampled
    every 5 ms in a thread: tracemalloc would slow the measured code down)."""

    def __enter__(self) -> _PeakMemory:
        self._process = psutil.Process()
        self._start = self._process.memory_info().rss
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss - self._start)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Point:
    indexed: int  # passages in the index when the timed window starts
    window: int  # passages deduplicated in the timed window
    passages_per_second: float
    peak_mb: float
    index_bytes_per_passage: float


def index_bytes(engine: Engine) -> int:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return int(connection.execute(text("SELECT pg_total_relation_size('lsh_keys') + pg_total_relation_size('recent_lsh_keys')")).scalar_one())
        return int(connection.execute(text("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '%lsh_keys%'")).scalar_one() or 0)


def measure(engine: Engine, settings: DedupSettings, pool: list[str], sizes: list[int], probe: int) -> list[Point]:
    """Fill the index to each size, then time the dedup of the next ``max(probe, size / 4)``
    fresh passages: a window long enough to hold the merges of recent band keys into the
    index (``ingest.band_index``) that a large index pays for now and then."""
    points: list[Point] = []
    source = passages(pool, sum(max(probe, size // 4) for size in sizes) + sizes[-1], seed=1)
    indexed = 0
    for size in sizes:
        while indexed < size:
            chunk = [next(source) for _ in range(min(50_000, size - indexed))]
            store_passages(engine, chunk, "fill")
            deduplicate_pending(engine, settings)
            indexed += len(chunk)
        window, seconds, peak = max(probe, size // 4), 0.0, 0.0
        for start in range(0, window, 50_000):
            store_passages(engine, [next(source) for _ in range(min(50_000, window - start))], "probe")
            if engine.dialect.name == "postgresql":  # what autovacuum does after bulk loads, at once
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                    connection.execute(text("ANALYZE"))
            with _PeakMemory() as memory:
                started = time.perf_counter()
                deduplicate_pending(engine, settings)
                seconds += time.perf_counter() - started
            peak = max(peak, memory.peak)
        with engine.connect() as connection:
            first_appearances = connection.execute(
                select(func.count()).select_from(select(LshKey.passage_id).union(select(RecentLshKey.passage_id)).subquery())
            ).scalar_one()
        points.append(Point(size, window, window / seconds, peak / 2**20, index_bytes(engine) / max(first_appearances, 1)))
        indexed += window
    return points


def baseline(pool: list[str], count: int, threshold: float) -> float:
    """Passages per second of the plain datasketch loop, in memory."""
    texts = list(passages(pool, count, seed=2))
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    started = time.perf_counter()
    for n, passage in enumerate(texts):
        words = normalize(passage).split()
        minhash = MinHash(num_perm=128)
        minhash.update_batch([" ".join(words[i : i + 5]).encode() for i in range(max(len(words) - 4, 1))])
        lsh.query(minhash)
        lsh.insert(str(n), minhash)
    return count / (time.perf_counter() - started)
