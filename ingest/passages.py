"""Passages (paragraphs) of clean text, their normal form and their shingles.

Shingles are hashed n-grams of the normalised text, computed for a whole batch
of passages at once with numpy (no Python step per shingle). ``char`` shingles
(the default) suit short passages, where a one-word edit changes few of them,
and Korean, Japanese and Chinese, which need no word segmentation; ``word``
shingles are there to compare against (``python -m ingest.eval dedup``).
A passage's shingles are a sorted array of distinct 32-bit hashes.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from typing import Literal

import numpy as np
import regex
import xxhash

ShingleKind = Literal["char", "word"]

_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
# A word hashes as the sum of its code points times powers of _BASE (odd, so invertible mod 2**32).
_BASE = 0x01000193
_INVERSE = pow(_BASE, -1, 1 << 32)
# Odd multipliers for the n positions of a window (up to 8), and the final mix (murmur3's fmix32).
_POSITION = np.array([0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1, 0xD3A2646C, 0xFD7046C5, 0xB55A4F09], dtype=np.uint32)


def split_passages(text: str) -> list[str]:
    """One passage per non-empty line, whitespace tidied."""
    return [line for line in (" ".join(raw.split()) for raw in text.splitlines()) if line]


def _dropped(code: int) -> bool:
    """Punctuation (quotes and dashes of every kind among it), separators, controls, modifier symbols."""
    category = unicodedata.category(chr(code))
    return category[0] in "PZC" or category == "Sk"


_ASCII_TABLE = bytes(32 if _dropped(c) else c for c in range(128)) + bytes(range(128, 256))


@functools.cache
def _bmp_table() -> str:
    """Index = code point: the character or a space; ``str.translate`` leaves the rest alone."""
    return "".join(" " if _dropped(c) else chr(c) for c in range(0x10000))


def normalize(passage: str) -> str:
    """NFKC, case folded, punctuation (quotes and dashes with it) dropped, spaces collapsed."""
    folded = unicodedata.normalize("NFKC", passage).casefold()
    if folded.isascii():  # the common case, at bytes speed
        folded = folded.encode().translate(_ASCII_TABLE).decode()
    else:
        folded = folded.translate(_bmp_table())
    return " ".join(folded.split())


def norm_hash(normalized: str) -> int:
    """Signed 64-bit hash of a normal form (fits BIGINT on every database)."""
    return xxhash.xxh64_intdigest(normalized.encode()) - (1 << 63)


def fmix32(h: np.ndarray) -> np.ndarray:
    """murmur3's 32-bit finaliser, element-wise (also datasketch's premix for its affine schemes)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _flat_units(texts: Sequence[str], kind: ShingleKind) -> tuple[np.ndarray, np.ndarray]:
    """What windows slide over, for all texts end to end, and how many belong to each
    text: code points, or 32-bit word hashes. A word's hash, the sum of its code points
    ``c[j]`` times ``_BASE ** (j - start)``, comes from prefix sums of ``c[j] * _BASE ** j``
    over all texts at once: the difference at the word's ends, times ``_INVERSE ** start``.
    A few numpy passes over the characters, where a pass per word would be a Python loop."""
    if kind == "char":
        points = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
        return points, np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    points = np.frombuffer((" ".join(texts) + " ").encode("utf-32-le"), dtype=np.uint32)
    letter = points != 32
    edges = np.flatnonzero(letter[1:] != letter[:-1]) + 1  # a word's start, then its end, ...: the last unit is a space
    if letter[0]:
        edges = np.concatenate(([0], edges))
    starts, ends = edges[0::2], edges[1::2]
    text_starts = np.concatenate(([0], np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1)))
    counts = np.diff(np.searchsorted(starts, text_starts))
    prefix = np.zeros(points.size + 1, dtype=np.uint32)
    np.cumsum(points * _powers(_BASE, points.size), dtype=np.uint32, out=prefix[1:])  # wraps mod 2**32
    return fmix32((prefix[ends] - prefix[starts]) * _powers(_INVERSE, points.size)[starts]), counts


def _powers(base: int, count: int) -> np.ndarray:
    """``base ** i`` mod 2**32 for i < ``count``."""
    powers = np.full(count, base, dtype=np.uint32)
    powers[:1] = 1
    return np.multiply.accumulate(powers, out=powers)


def shingle_batch(
    texts: Sequence[str], size: int, kind: ShingleKind = "char", cjk_size: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Shingles of many normalised passages: ``(bounds, hashes)``, where passage ``i`` owns
    ``hashes[bounds[i]:bounds[i + 1]]`` (sorted, distinct). A passage shorter than one
    window is one shingle; an empty one has none. With word shingles, passages written in
    Korean, Japanese or Chinese are shingled by ``cjk_size`` characters: their words are
    not separated by spaces (or carry their particles)."""
    if kind == "word":
        cjk = np.fromiter((not t.isascii() and bool(_CJK.search(t)) for t in texts), dtype=bool, count=len(texts))
        if cjk.any():
            return _merge(
                cjk,
                _windows(*_flat_units([t for t, c in zip(texts, cjk) if c], "char"), cjk_size),
                _windows(*_flat_units([t for t, c in zip(texts, cjk) if not c], "word"), size),
            )
    return _windows(*_flat_units(texts, kind), size)


def _merge(
    first: np.ndarray, ones: tuple[np.ndarray, np.ndarray], others: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Interleave two shingle batches back into the passages' order (``first[i]``: from ``ones``)."""
    parts, bounds = [], [0]
    taken = {True: 0, False: 0}
    for is_first in first.tolist():
        batch_bounds, batch_hashes = ones if is_first else others
        i = taken[is_first]
        parts.append(batch_hashes[batch_bounds[i] : batch_bounds[i + 1]])
        bounds.append(bounds[-1] + parts[-1].size)
        taken[is_first] += 1
    return np.asarray(bounds, dtype=np.int64), np.concatenate(parts) if parts else np.zeros(0, np.uint32)


def _windows(units: np.ndarray, lengths: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct window hashes per text, from the texts' units end to end. A window of a text
    shorter than ``size`` reads zeros past its end (as if padded)."""
    count = lengths.size
    windows = np.where(lengths == 0, 0, np.maximum(lengths - size + 1, 1))
    if not windows.any():
        return np.zeros(count + 1, dtype=np.int64), np.zeros(0, dtype=np.uint32)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    owner = np.repeat(np.arange(count, dtype=np.int64), windows)
    first = np.repeat(starts, windows) + (np.arange(owner.size) - np.repeat(np.cumsum(windows) - windows, windows))
    ends = (starts + lengths)[owner]
    padded = np.concatenate((units, np.zeros(size, np.uint32)))
    hashes = padded[first] * _POSITION[0]
    for offset in range(1, size):
        position = first + offset
        hashes ^= np.where(position < ends, padded[position], np.uint32(0)) * _POSITION[offset]
    keys = np.sort((owner.astype(np.uint64) << np.uint64(32)) | fmix32(hashes).astype(np.uint64))
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    bounds = np.searchsorted(keys >> np.uint64(32), np.arange(count + 1, dtype=np.uint64))
    return bounds.astype(np.int64), (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def shingles(normalized: str, size: int, kind: ShingleKind = "char", cjk_size: int = 3) -> np.ndarray:
    """The shingles of one normalised passage."""
    _bounds, hashes = shingle_batch([normalized], size, kind, cjk_size)
    return hashes


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two shingle arrays (sorted, distinct)."""
    if not a.size and not b.size:
        return 1.0
    common = np.intersect1d(a, b, assume_unique=True).size
    return common / (a.size + b.size - common)
