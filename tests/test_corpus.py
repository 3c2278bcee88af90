"""``ingest dedup``: bring-your-own corpus through the same engine and index."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash
from sqlalchemy import func, select

from ingest.corpus import dedup_jsonl, doc_url, reference
from ingest.db import open_store, transaction
from ingest.errors import UserError
from ingest.minhash import Sketcher, permutations
from ingest.models import Passage
from ingest.passages import normalize, shingle_batch
from ingest.settings import DedupSettings
from tests.test_dedup import P1, P2, P3, P4, P5

ONE_WORD = P2.replace("inspect", "examine")


def run(db_url: str, docs: list[dict]) -> list[dict]:
    out = io.StringIO()
    dedup_jsonl(db_url, [json.dumps(d) for d in docs], out, DedupSettings())
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_decisions_in_file_order_with_ids_kept(db_url: str) -> None:
    decisions = run(db_url, [
        {"id": 7, "text": f"{P1}\n{P2}\n{P3}"},
        {"id": "copy/1", "text": f"{P1}\n{ONE_WORD}\n{P3}"},
        {"id": 9, "text": f"{P4}\n{P5}"},
    ])
    assert [d["id"] for d in decisions] == [7, "copy/1", 9]
    assert decisions[0]["duplicate_of"] is None and decisions[2]["duplicate_of"] is None
    assert decisions[1]["duplicate_of"] == 7
    assert [p["duplicate_of"] for p in decisions[1]["passages"]] == [7, 7, 7]
    assert [p["text"] for p in decisions[1]["passages"]] == [P1, ONE_WORD, P3]


def test_preloaded_archive_and_rerun(db_url: str) -> None:
    run(db_url, [{"id": "archive-1", "text": f"{P1}\n{P2}"}])
    (again,) = run(db_url, [{"id": "new-1", "text": f"{P1}\n{ONE_WORD}"}])
    assert again["duplicate_of"] == "archive-1"
    before = passages(db_url)
    assert run(db_url, [{"id": "new-1", "text": f"{P1}\n{ONE_WORD}"}]) == [again], "a re-run changes nothing"
    assert passages(db_url) == before


def passages(db_url: str) -> int:
    with transaction(open_store(db_url)) as session:
        return session.scalar(select(func.count()).select_from(Passage))


def test_ids_round_trip() -> None:
    for doc_id in (1, "1", "a b/c?d", "ü"):
        assert reference(doc_url(doc_id)) == doc_id
    with pytest.raises(ValueError):
        doc_url(1.5)


def test_bad_input_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="input line 2"):
        dedup_jsonl(f"sqlite:///{tmp_path / 'x.db'}", ['{"id": 1, "text": "a"}', '{"text": "no id"}'], io.StringIO(), DedupSettings())


def test_signatures_equal_datasketchs() -> None:
    """The batch computation is datasketch's MinHash (affine32, identity hash on our shingle hashes)."""
    settings = DedupSettings()
    sketcher = Sketcher(settings)
    texts = [normalize(t) for t in (P1, P2, "短い", "", "서울시는 폭염에 대비해 무더위 쉼터 운영 시간을 연장한다")]
    bounds, hashes = shingle_batch(texts, settings.shingle_size, settings.shingle, settings.cjk_shingle_size)
    signatures = sketcher.signatures(bounds, hashes)
    assert all(np.array_equal(ours, theirs) for ours, theirs in zip(
        permutations(settings.num_perm, settings.seed), MinHash(num_perm=settings.num_perm, seed=settings.seed, scheme="affine32").permutations))
    for i in range(len(texts)):
        reference_hash = MinHash(num_perm=settings.num_perm, seed=settings.seed, hashfunc=lambda x: x, scheme="affine32")
        reference_hash.update_batch([int(h) for h in hashes[bounds[i] : bounds[i + 1]]])
        assert np.array_equal(reference_hash.hashvalues, signatures[i])


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_two_processes_on_overlapping_input_never_store_the_same_passage_twice(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db_url = f"sqlite:///{tmp_path / 'news.db'}" if store == "sqlite" else request.getfixturevalue("pg_url")
    open_store(db_url)  # migrate once, before the race
    rng = random.Random(5)
    words = (P1 + " " + P2 + " " + P3 + " " + P4 + " " + P5).split()
    texts = [" ".join(rng.choice(words) for _ in range(40)) for _ in range(300)]  # 300 unrelated passages
    for name, order in (("a", texts), ("b", texts[::-1])):
        lines = [json.dumps({"id": f"{name}-{n}", "text": t}) for n, t in enumerate(order)]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines), encoding="utf-8")
    procs = [
        subprocess.Popen([sys.executable, "-m", "ingest", "dedup", "-i", str(tmp_path / f"{n}.jsonl"), "-o", str(tmp_path / f"{n}.out"), "--db", db_url],
                         stderr=subprocess.PIPE, text=True)
        for n in ("a", "b")
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    with transaction(open_store(db_url)) as session:
        rows = session.execute(select(Passage.text, Passage.duplicate_of_id)).all()
    originals: dict[str, int] = {}
    for text, duplicate_of in rows:
        originals[normalize(text)] = originals.get(normalize(text), 0) + (duplicate_of is None)
    assert len(originals) == 300 and set(originals.values()) == {1}, "each text stored once as new, never twice"
