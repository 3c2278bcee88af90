from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from ingest.archive import RawArchive


def test_content_addressed_and_compressed(tmp_path: Path) -> None:
    archive = RawArchive(str(tmp_path / "raw"))
    body = b"<html>" + b"x" * 10_000 + b"</html>"
    sha = archive.put(body)
    assert sha == hashlib.sha256(body).hexdigest()
    stored = list((tmp_path / "raw").rglob("*.gz"))
    assert [p.name for p in stored] == [f"{sha}.gz"]
    assert stored[0].stat().st_size < len(body) / 10
    assert gzip.decompress(stored[0].read_bytes()) == body
    assert archive.put(body) == sha and len(list((tmp_path / "raw").rglob("*.gz"))) == 1, "stored once"
    assert archive.get(sha) == body
    assert not list((tmp_path / "raw").rglob("*.part")), "no partial files left behind"


def test_fsspec_url(tmp_path: Path) -> None:
    archive = RawArchive(f"file://{tmp_path}/raw")
    sha = archive.put(b"feed bytes")
    assert archive.get(sha) == b"feed bytes"
    memory = RawArchive("memory://ingest-test-raw")
    assert memory.get(memory.put(b"page")) == b"page"
