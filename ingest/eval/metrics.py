"""The article-extraction-benchmark's metric, written from its published definition.

Text is split into ``\\w+`` tokens; 4-token shingles are compared as multisets;
per page, true/false positives and false negatives are normalised to sum to 1
so long pages weigh no more than short ones; precision is averaged over pages
with any prediction, recall over pages with any truth, and F1 is taken of the
two averages. Intervals are ±1.96 standard deviations over bootstrap resamples
of the pages, as in the benchmark's own ``evaluate.py``.
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\w+")

Match = tuple[float, float, float]  # normalised (tp, fp, fn) of one page


def _shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n])


def match(truth: str, predicted: str) -> Match:
    true, pred = _shingles(truth), _shingles(predicted)
    tp = float(sum((true & pred).values()))
    fp = float(sum((pred - true).values()))
    fn = float(sum((true - pred).values()))
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return tp / (tp + fp) if tp + fp else 0.0


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return tp / (tp + fn) if tp + fn else 0.0


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float


def scores(matches: Sequence[Match]) -> Scores:
    precision = statistics.mean([_precision(*m) for m in matches if m[0] + m[1] > 0] or [0.0])
    recall = statistics.mean([_recall(*m) for m in matches if m[0] + m[2] > 0] or [0.0])
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1)


def bootstrap(matches: Sequence[Match], rounds: int = 1000, seed: int = 0) -> Scores:
    """Half-widths of the 95 % intervals of precision, recall and F1."""
    rng = random.Random(seed)
    samples = [scores([matches[rng.randrange(len(matches))] for _ in matches]) for _ in range(rounds)]
    return Scores(
        1.96 * statistics.stdev(s.precision for s in samples),
        1.96 * statistics.stdev(s.recall for s in samples),
        1.96 * statistics.stdev(s.f1 for s in samples),
    )
