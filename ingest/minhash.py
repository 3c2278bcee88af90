"""MinHash signatures and LSH band keys for passages (datasketch does the hashing).

Each passage gets ``bands`` keys, one per band of ``rows`` signature values;
two passages become candidates when they share a key. The parameters are
stored with the index, because signatures made with other parameters, another
permutation scheme or another datasketch major version never match.
"""

from __future__ import annotations

from typing import Any

import datasketch
import numpy as np
import xxhash
from datasketch import MinHash

from ingest.settings import DedupSettings

SCHEME = "affine32"
NORMALIZATION = 1  # bump when passages.normalize changes


class Sketcher:
    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings

    @property
    def params(self) -> dict[str, Any]:
        s = self.settings
        return {
            "shingle": "char",
            "shingle_size": s.shingle_size,
            "num_perm": s.num_perm,
            "bands": s.bands,
            "rows": s.rows,
            "seed": s.seed,
            "scheme": SCHEME,
            "hashfunc": "xxh32",
            "normalization": NORMALIZATION,
            "datasketch": datasketch.__version__.split(".")[0],
        }

    def band_keys(self, shingle_sets: list[set[bytes]]) -> list[list[int]]:
        """LSH keys per shingle set: signed 64-bit, band index mixed in."""
        s = self.settings
        minhashes = MinHash.bulk(
            [list(shingle_set) for shingle_set in shingle_sets],
            num_perm=s.num_perm,
            seed=s.seed,
            hashfunc=xxhash.xxh32_intdigest,
            scheme=SCHEME,
        )
        keys: list[list[int]] = []
        for minhash in minhashes:
            values = np.asarray(minhash.hashvalues, dtype="<u4")
            keys.append(
                [
                    xxhash.xxh64_intdigest(values[band * s.rows : (band + 1) * s.rows].tobytes(), seed=band) - (1 << 63)
                    for band in range(s.bands)
                ]
            )
        return keys
