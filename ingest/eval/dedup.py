"""Deduplication accuracy against exact similarities, on Reuters-21578 and on passages with controlled edits.

Truth is the exact Jaccard similarity of word 5-gram sets after the engine's
own normalisation. Pairs at 0.9 or more are found without missing any by
prefix filtering (an exact all-pairs similarity join: two sets with Jaccard
>= t share a token among the first |x| - ceil(t|x|) + 1 tokens of each, in a
global rare-first order). The engine runs through ``ingest dedup``'s code on a
fresh SQLite store. A reported link (a document or passage marked duplicate of
an earlier one) whose exact similarity is below 0.6 is a false positive; a pair
at 0.9 or more that does not end up in one cluster is a miss.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.corpus import dedup_jsonl
from ingest.passages import _CJK, normalize
from ingest.settings import DedupSettings

FALSE_BELOW = 0.6
EDITS = ("one word", "one number", "sentence added", "sentence dropped", "sentences reordered", "quotes and dashes")
MISS_FROM = 0.9
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")


def word_shingles(text: str, size: int = 5, cjk_size: int = 3) -> frozenset[tuple[str, ...]]:
    """Word 5-grams of the normal form; character 3-grams for Korean, Japanese and Chinese
    text, as the engine shingles them (their words are not separated by spaces)."""
    normal = normalize(text)
    units: list[str] = list(normal) if _CJK.search(normal) else normal.split()
    size = cjk_size if _CJK.search(normal) else size
    if len(units) <= size:
        return frozenset([tuple(units)]) if units else frozenset()
    return frozenset(tuple(units[i : i + size]) for i in range(len(units) - size + 1))


def exact_jaccard(a: frozenset[Any], b: frozenset[Any]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def similar_pairs(sets: Sequence[frozenset[Any]], threshold: float) -> dict[tuple[int, int], float]:
    """Every pair (i < j) with exact Jaccard >= threshold, by prefix filtering (misses none)."""
    frequency = Counter(token for s in sets for token in s)
    order = {token: rank for rank, (token, _n) in enumerate(sorted(frequency.items(), key=lambda item: (item[1], item[0])))}
    index: dict[Any, list[int]] = defaultdict(list)
    found: dict[tuple[int, int], float] = {}
    for j in sorted(range(len(sets)), key=lambda k: len(sets[k])):
        tokens = sorted(sets[j], key=order.__getitem__)
        prefix = len(tokens) - math.ceil(threshold * len(tokens)) + 1
        candidates = {i for token in tokens[:prefix] for i in index[token]}
        for i in candidates:
            if len(sets[i]) >= threshold * len(sets[j]) and (similarity := exact_jaccard(sets[i], sets[j])) >= threshold:
                found[(min(i, j), max(i, j))] = similarity
        for token in tokens[:prefix]:
            index[token].append(j)
    return found


@dataclass
class Score:
    name: str
    links: int = 0
    false_links: int = 0
    truth_pairs: int = 0
    missed: int = 0
    seconds: float = 0.0
    items: int = 0
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # edit kind → (linked, total)
    failures: list[tuple[str, int, int, float]] = field(default_factory=list)  # ("false link" | "miss", i, j, J)

    @property
    def precision(self) -> float:
        return 1 - self.false_links / self.links if self.links else 1.0

    @property
    def recall(self) -> float:
        return 1 - self.missed / self.truth_pairs if self.truth_pairs else 1.0

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


def _run_engine(docs: list[dict[str, Any]], settings: DedupSettings) -> tuple[list[dict[str, Any]], float]:
    """Decisions of the engine on ``docs`` (in order), on a throwaway SQLite store; seconds taken."""
    with tempfile.TemporaryDirectory(prefix="ingest-eval-") as folder:
        lines = [json.dumps(doc) for doc in docs]
        out = io.StringIO()
        started = time.perf_counter()
        dedup_jsonl(f"sqlite:///{Path(folder) / 'eval.db'}", lines, out, settings)
        seconds = time.perf_counter() - started
    return [json.loads(line) for line in out.getvalue().splitlines()], seconds


def _score(name: str, sets: list[frozenset[Any]], links: list[tuple[int, int]], seconds: float, items: int) -> Score:
    root = list(range(len(sets)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for a, b in links:
        root[find(a)] = find(b)
    truth = similar_pairs(sets, MISS_FROM)
    false_links = [("false link", a, b, exact_jaccard(sets[a], sets[b])) for a, b in links if exact_jaccard(sets[a], sets[b]) < FALSE_BELOW]
    misses = [("miss", a, b, similarity) for (a, b), similarity in truth.items() if find(a) != find(b)]
    return Score(
        name, links=len(links), false_links=len(false_links), truth_pairs=len(truth), missed=len(misses),
        seconds=seconds, items=items, failures=false_links + misses,
    )


# --- Reuters-21578: documents -------------------------------------------------


def reuters_documents(folder: Path) -> list[dict[str, Any]]:
    """Documents with a body, paragraphs rebuilt: bodies are hard-wrapped at ~70 columns and
    paragraphs start on indented lines; the closing "Reuter" sign-off is dropped."""
    docs = []
    for path in sorted(folder.glob("reut2-*.json")):
        for record in json.loads(path.read_text(encoding="utf-8")):
            body = (record.get("body") or "").replace("&#3;", "").strip()
            body = re.sub(r"\s*\bReuter\s*$", "", body)
            paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s{2,}", body)]
            text = "\n".join(p for p in paragraphs if p)
            if text:
                docs.append({"id": record["attrs"]["newid"], "text": text})
    return docs


def evaluate_reuters(folder: Path, settings: DedupSettings) -> Score:
    return evaluate_documents("Reuters-21578 (half), articles", reuters_documents(folder), settings)


def evaluate_documents(name: str, docs: list[dict[str, Any]], settings: DedupSettings) -> Score:
    """Any corpus of ``{"id", "text"}`` documents, scored at the article level."""
    decisions, seconds = _run_engine(docs, settings)
    position = {doc["id"]: i for i, doc in enumerate(docs)}
    links = [(position[d["id"]], position[d["duplicate_of"]]) for d in decisions if d["duplicate_of"] is not None]
    sets = [word_shingles(doc["text"].replace("\n", " ")) for doc in docs]
    return _score(name, sets, links, seconds, sum(len(d["passages"]) for d in decisions))


# --- passages with controlled edits -------------------------------------------


def _sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE.split(paragraph) if s]


def edited_passages(folder: Path, count: int = 1500, seed: int = 7) -> list[dict[str, Any]]:
    """Real paragraphs (30+ words) first, then one edited copy of each per edit kind, and
    pairs of different paragraphs that share one sentence. Each item has ``kind`` and,
    for copies, ``base`` (the index of its original)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    paragraphs = []
    for doc in reuters_documents(folder):
        for paragraph in doc["text"].split("\n"):
            if len(paragraph.split()) >= 30 and normalize(paragraph) not in seen:
                seen.add(normalize(paragraph))
                paragraphs.append(paragraph)
    rng.shuffle(paragraphs)
    bases, spare = paragraphs[:count], paragraphs[count:]
    items: list[dict[str, Any]] = [{"text": p, "kind": "original"} for p in bases]
    vocabulary = [w for p in spare[:500] for w in p.split() if w.isalpha() and len(w) > 3]

    def edit(kind: str, text: str) -> str | None:
        words, sentences = text.split(), _sentences(text)
        if kind == "one word":
            spots = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 3]
            i = rng.choice(spots)
            words[i] = rng.choice([v for v in vocabulary if v.lower() != words[i].lower()])
            return " ".join(words)
        if kind == "one number":
            numbers = list(_NUMBER.finditer(text))
            if not numbers:
                return None
            m = rng.choice(numbers)
            return text[: m.start()] + str(int(re.sub(r"\D", "", m.group()) or 0) + rng.randint(1, 9)) + text[m.end() :]
        if kind == "numbers changed":  # a new day's figures in the same sentence frame: another report
            numbers = list(_NUMBER.finditer(text))
            if len(numbers) < 3:
                return None
            return _NUMBER.sub(lambda m: str(int(re.sub(r"\D", "", m.group()) or 0) + rng.randint(1, 9)), text)
        if kind == "sentence added":
            return text + " " + rng.choice(_sentences(rng.choice(spare)))
        if kind == "sentence dropped":
            return " ".join(sentences[:-1]) if len(sentences) >= 3 else None
        if kind == "sentences reordered":
            return " ".join([sentences[-1], *sentences[:-1]]) if len(sentences) >= 2 else None
        # quote and dash variants
        variant = text.replace('"', "\u201c", 1).replace('"', "\u201d", 1).replace(" - ", " \u2014 ").replace("'", "\u2019")
        return variant if variant != text else text.upper()

    for kind in (*EDITS, "numbers changed"):
        for index, base in enumerate(bases):
            edited = edit(kind, base)
            if edited is not None:
                items.append({"text": edited, "kind": kind, "base": index})
    for first, second in zip(spare[: count // 2], spare[count // 2 : count], strict=False):
        own, other = _sentences(second), _sentences(first)
        if len(own) >= 2 and len(other) >= 2:
            items.append({"text": first, "kind": "shares a sentence (original)"})
            items.append({"text": " ".join([own[0], other[1], *own[2:]]), "kind": "shares a sentence", "base": len(items) - 1})
    return items


def evaluate_passages(folder: Path, settings: DedupSettings) -> Score:
    items = edited_passages(folder)
    docs = [{"id": i, "text": item["text"]} for i, item in enumerate(items)]
    decisions, seconds = _run_engine(docs, settings)
    links = [(d["id"], d["passages"][0]["duplicate_of"]) for d in decisions if d["passages"] and d["passages"][0]["duplicate_of"] is not None]
    sets = [word_shingles(item["text"]) for item in items]
    score = _score("passages with controlled edits", sets, links, seconds, len(items))
    linked = {a: b for a, b in links}
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, item in enumerate(items):
        if "base" in item:
            kinds[item["kind"]][0] += linked.get(i) == item["base"]
            kinds[item["kind"]][1] += 1
    score.by_kind = {kind: (found, total) for kind, (found, total) in kinds.items()}
    return score
