"""The ``ingest`` command as a user meets it: clear one-line errors, extract over folders."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_rules import BODY


def ingest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingest", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (["run", "--feeds", "missing.yaml"], {}, "error: feeds file not found: missing.yaml"),
        (["run", "--feeds", "bad.yaml"], {"bad.yaml": "feeds: ["}, "error: feeds file bad.yaml is not valid YAML at line 1"),
        (["run", "--feeds", "ok.yaml", "--db", "postgresql+psycopg://u:pw@127.0.0.1:1/x"],
         {"ok.yaml": "feeds:\n  - name: a\n    url: https://a.example/feed\n"}, "error: cannot connect to database postgresql+psycopg://u:***@127.0.0.1:1/x"),
        (["run", "--feeds", "ok.yaml", "--db", "mysql+nodriver://x"],
         {"ok.yaml": "feeds:\n  - name: a\n    url: https://a.example/feed\n"}, "error: invalid database URL"),
        (["extract", "nowhere"], {}, "error: no such file or folder: nowhere"),
        (["reindex", "--db", "sqlite:///nowhere.db"], {}, "error: no news store at nowhere.db"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(tmp_path: Path, args: list[str], files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = ingest(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_extract_a_folder_of_saved_pages(tmp_path: Path) -> None:
    paragraphs = "".join(f"<p>{p}</p>" for p in BODY)
    page = (f"<html lang='en'><head><title>Story</title></head><body><article><h1>Story</h1>{paragraphs}"
            "<p>- Advertisement -</p><p>BY JANE DOE [jane@example.com]</p></article></body></html>")
    (tmp_path / "pages" / "sub").mkdir(parents=True)
    (tmp_path / "pages" / "one.html").write_text(page)
    (tmp_path / "pages" / "sub" / "two.html.gz").write_bytes(gzip.compress(page.encode()))
    (tmp_path / "pages" / "notes.txt").write_text("not a page")
    done = ingest("extract", "pages", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(r["file"]).name for r in records] == ["one.html", "two.html.gz"]
    for record in records:
        assert set(record) >= {"file", "url", "title", "author", "published", "language", "text", "removed"}
        assert record["text"].split("\n") == BODY and record["language"] == "en"
        assert {(r["rule"], r["text"]) for r in record["removed"]} == {
            ("title_repeat", "Story"), ("ad_marker", "- Advertisement -"), ("byline", "BY JANE DOE [jane@example.com]")}


def test_extract_with_url(tmp_path: Path) -> None:
    (tmp_path / "p.html").write_text(f"<html><body><article><p>{BODY[0]}</p></article></body></html>")
    done = ingest("extract", "p.html", "--url", "https://n.example/a", cwd=tmp_path)
    assert json.loads(done.stdout)["url"] == "https://n.example/a"


def test_export_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    done = ingest("export", "--db", "sqlite:///data/nwes.db", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: no news store at data/nwes.db")
    assert not (tmp_path / "data").exists(), "a typo must not create an empty store"


def test_export_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    from ingest.db import open_store, transaction
    from ingest.models import Article, ArticleStatus
    from datetime import datetime, timezone

    url = f"sqlite:///{tmp_path / 'news.db'}"
    now = datetime.now(timezone.utc)
    with transaction(open_store(url)) as session:
        session.add_all(
            Article(url=f"https://n.example/{n}", raw_url="x", source="t", status=ArticleStatus.stored, discovered_at=now, title="t" * 500)
            for n in range(2000)
        )
    done = subprocess.run(
        f"{sys.executable} -m ingest export --db {url} | head -c 100 > /dev/null; echo ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert "Traceback" not in done.stderr and done.stdout.strip() == "0"


def test_reindex_deduplicates_the_store_again_with_todays_parameters(tmp_path: Path) -> None:
    from ingest.db import open_store
    from ingest.dedup import deduplicate_pending
    from ingest.settings import DedupSettings
    from tests.test_dedup import P1, P2, add, duplicate_of

    url = f"sqlite:///{tmp_path / 'news.db'}"
    engine = open_store(url)
    add(engine, "https://a.example/1", [P1, P2])
    add(engine, "https://b.example/1", [P1, P2])
    deduplicate_pending(engine, DedupSettings(num_perm=64, bands=16, rows=4))
    engine.dispose()
    done = ingest("reindex", "--db", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"rebuilt the index of {url}: 2 stored articles deduplicated again" in done.stderr
    assert duplicate_of(engine, "https://b.example/1") == "https://a.example/1"
