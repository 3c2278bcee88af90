"""The raw archive: every fetched feed and page body, gzip-compressed and content-addressed.

Re-extraction and backfills read from here instead of refetching. The root
is a folder or any fsspec URL (``s3://bucket/raw``, ``gs://…``); identical
bodies are stored once, under ``<root>/<sha256[:2]>/<sha256>.gz``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import uuid

import fsspec
from fsspec.implementations.local import LocalFileSystem


class RawArchive:
    def __init__(self, root: str) -> None:
        self.fs, path = fsspec.core.url_to_fs(root)
        self.root = path.rstrip("/")
        self._local = isinstance(self.fs, LocalFileSystem)

    def _path(self, sha256: str) -> str:
        return f"{self.root}/{sha256[:2]}/{sha256}.gz"

    def put(self, body: bytes) -> str:
        """Store ``body`` unless already there; return its SHA-256 (hex)."""
        sha256 = hashlib.sha256(body).hexdigest()
        path = self._path(sha256)
        if self.fs.exists(path):
            return sha256
        data = gzip.compress(body, compresslevel=6, mtime=0)
        if self._local:
            # Write then rename, so a reader never sees half a file.
            self.fs.makedirs(os.path.dirname(path), exist_ok=True)
            partial = f"{path}.{uuid.uuid4().hex}.part"
            with open(partial, "wb") as handle:
                handle.write(data)
            os.replace(partial, path)
        else:
            self.fs.pipe_file(path, data)
        return sha256

    def get(self, sha256: str) -> bytes:
        return gzip.decompress(self.fs.cat_file(self._path(sha256)))
