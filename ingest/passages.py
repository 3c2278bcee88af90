"""Passages (paragraphs) of clean text, their normal form and their shingles.

Shingles are characters of the normalised text, not words: a one-word edit
in a 30-word passage changes a small share of them (word 5-grams would lose
a third), and Korean, Japanese and Chinese need no word segmentation.
"""

from __future__ import annotations

import re
import unicodedata

import regex
import xxhash

_QUOTES = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′‵ʼ`´", "'"),
        **dict.fromkeys("“”„‟″‶«»「」『』", '"'),
        **dict.fromkeys("‐‑‒–—―−﹘﹣－", "-"),
    }
)
_SPACES = re.compile(r"\s+")
_NOT_TEXT = regex.compile(r"[\p{P}\p{Z}\p{C}\s]+")  # punctuation, separators, controls


def split_passages(text: str) -> list[str]:
    """One passage per non-empty line, whitespace tidied."""
    return [line for line in (_SPACES.sub(" ", raw).strip() for raw in text.splitlines()) if line]


def normalize(passage: str) -> str:
    """NFKC, case folded, quotes and dashes folded, punctuation dropped, spaces collapsed."""
    folded = unicodedata.normalize("NFKC", passage).casefold().translate(_QUOTES)
    return _NOT_TEXT.sub(" ", folded).strip()


def norm_hash(normalized: str) -> int:
    """Signed 64-bit hash of a normal form (fits BIGINT on every database)."""
    return xxhash.xxh64_intdigest(normalized.encode()) - (1 << 63)


def shingles(normalized: str, size: int) -> set[bytes]:
    """Character ``size``-grams; a text shorter than one shingle is its own shingle."""
    data = normalized
    if len(data) <= size:
        return {data.encode()}
    return {data[i : i + size].encode() for i in range(len(data) - size + 1)}


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
