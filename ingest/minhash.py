"""MinHash signatures and LSH band keys, for a whole batch of passages at once.

The permutations are datasketch's (``MinHash(num_perm, seed).permutations``,
``affine32`` scheme, drawn here as datasketch draws them), applied with numpy to
every shingle hash of the batch in one matrix operation: a signature here equals
datasketch's ``MinHash(num_perm, seed, hashfunc=<identity>, scheme="affine32")``
updated with the same 32-bit shingle hashes (a test checks it against datasketch),
without datasketch's Python step per shingle, and without importing datasketch,
which brings SciPy (half a second on every deduplication). Each signature is cut
into ``bands`` bands of ``rows`` values; each band hashes to a 32-bit key, and two
passages become candidates when they share a key. The parameters are stored with
the index: signatures made with other parameters, another scheme or another
datasketch major version never meet.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np

from ingest.passages import fmix32, shingle_batch
from ingest.settings import DedupSettings

SCHEME = "affine32"
NORMALIZATION = 3  # bump when passages.normalize or the shingle hash changes
BAND_KEY = 1  # bump when band_keys changes
_CHUNK_CELLS = 1 << 16  # shingles × permutations per matrix step (256 KiB of uint32: stays in cache, 12 % faster than 4 MiB)
_CHUNK_CHARS = 1 << 18  # characters shingled per step: about 15 MiB of numpy temporaries, and a third faster than 1 MiB steps
_MIX = np.uint64(0x9E3779B97F4A7C15)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's ``affine32`` permutations ``h -> a * h + b mod 2**32``: odd ``a`` (a bijection),
    drawn from ``RandomState(seed)`` in datasketch's order."""
    generator = np.random.RandomState(seed)
    a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


class Sketcher:
    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings
        self._datasketch_major = version("datasketch").split(".")[0]
        self._a, self._b = permutations(settings.num_perm, settings.seed)

    @property
    def params(self) -> dict[str, Any]:
        s = self.settings
        return {
            "shingle": s.shingle,
            "shingle_size": s.shingle_size,
            "cjk_shingle_size": s.cjk_shingle_size,
            "num_perm": s.num_perm,
            "bands": s.bands,
            "rows": s.rows,
            "seed": s.seed,
            "scheme": SCHEME,
            "normalization": NORMALIZATION,
            "band_key": BAND_KEY,
            "datasketch": self._datasketch_major,
        }

    def shingles(self, normalized: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(bounds, hashes)`` of the texts, as ``shingle_batch``, computed a slice of at most
        ``_CHUNK_CHARS`` characters at a time: its numpy steps hold tens of bytes per
        character, so one call over a batch's candidate articles must not take them all at once."""
        s = self.settings
        lengths = np.fromiter(map(len, normalized), dtype=np.int64, count=len(normalized))
        if int(lengths.sum()) <= _CHUNK_CHARS:
            return shingle_batch(normalized, s.shingle_size, s.shingle, s.cjk_shingle_size)
        ends = np.cumsum(lengths)
        parts_bounds, parts_hashes, start, offset = [np.zeros(1, dtype=np.int64)], [], 0, 0
        while start < len(normalized):
            base = int(ends[start - 1]) if start else 0
            end = max(int(np.searchsorted(ends, base + _CHUNK_CHARS, side="right")), start + 1)
            bounds, hashes = shingle_batch(normalized[start:end], s.shingle_size, s.shingle, s.cjk_shingle_size)
            parts_bounds.append(bounds[1:] + offset)
            parts_hashes.append(hashes)
            offset += int(bounds[-1])
            start = end
        return np.concatenate(parts_bounds), np.concatenate(parts_hashes)

    def signatures(self, bounds: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """One row of ``num_perm`` minima per passage (a passage without shingles gets all 0xFFFFFFFF)."""
        count = bounds.size - 1
        signatures = np.full((count, self.settings.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        mixed = fmix32(hashes)
        step = max(1, _CHUNK_CELLS // self.settings.num_perm)
        start = 0
        while start < count:
            end = int(np.searchsorted(bounds, bounds[start] + step, side="right")) - 1
            end = min(max(end, start + 1), count)
            lo, hi = bounds[start], bounds[end]
            if hi > lo:
                matrix = mixed[lo:hi, None] * self._a[None, :]
                matrix += self._b[None, :]
                nonempty = np.flatnonzero(bounds[start + 1 : end + 1] > bounds[start:end])
                signatures[start + nonempty] = np.minimum.reduceat(matrix, bounds[start:end][nonempty] - lo, axis=0)
            start = end
        return signatures

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """``bands`` signed 32-bit keys per signature, the band's index mixed in."""
        s = self.settings
        keys = np.broadcast_to(np.arange(1, s.bands + 1, dtype=np.uint64) * _MIX, (len(signatures), s.bands)).copy()
        for row in range(s.rows):  # one row of every band at a time: no 64-bit copy of the whole matrix
            keys ^= signatures[:, row : s.bands * s.rows : s.rows]
            keys *= _MIX
            keys ^= keys >> np.uint64(29)
        return (keys >> np.uint64(32)).astype(np.uint32).view(np.int32)
