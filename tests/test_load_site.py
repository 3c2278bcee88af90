"""The generated load site: distinct hosts, conditional GET, and a small ``ingest run`` over it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.cli import main as ingest
from ingest.load_site import LoadConfig, LoadSite, build, serve

# 40 Reuters-21578 stories (the shared benchmark's own licence beside them): enough for
# 30 articles without a story coming round twice.
STORIES = Path(__file__).resolve().parent / "fixtures" / "load_site"


@pytest.fixture(scope="module")
def site() -> Iterator[LoadSite]:
    with serve(build(LoadConfig(hosts=3, feeds_per_host=2, articles=30, syndicated=0.2), STORIES)) as running:
        yield running


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), b""


def test_every_host_answers_on_its_own_address(site: LoadSite) -> None:
    addresses = {host.address for host in site.model.hosts}
    assert addresses == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
    for host in site.model.hosts:
        own = {page.path for page in site.model.pages if page.host == host.index}
        other = next(page.path for page in site.model.pages if page.host != host.index)
        assert _get(site.base_url(host) + next(iter(own)))[0] == 200
        assert _get(site.base_url(host) + other)[0] == 404  # a page lives on one host only
    assert len(site.feed_urls()) == 6


@pytest.mark.parametrize("kind", ["page", "feed"])
def test_conditional_requests_get_304(site: LoadSite, kind: str) -> None:
    url = site.feed_urls()[0][1] if kind == "feed" else site.base_url(site.model.hosts[0]) + next(iter(site.model.by_host["127.0.0.2"]))
    status, headers, body = _get(url)
    assert status == 200 and body and headers["ETag"] and headers["Last-Modified"]
    assert _get(url, {"If-None-Match": headers["ETag"]})[0] == 304
    assert _get(url, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    assert _get(url, {"If-None-Match": '"other"'})[0] == 200


def test_a_run_stores_every_article_and_links_the_syndicated_copies(site: LoadSite, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("INGEST_RAW_STORE", str(tmp_path / "raw"))
    db = f"sqlite:///{tmp_path / 'news.db'}"
    assert ingest(["run", "--feeds", str(site.write_feeds_file(tmp_path / "feeds.yaml")), "--db", db]) == 0
    assert ingest(["export", "--db", db, "--output", str(tmp_path / "out.jsonl")]) == 0
    stored = {row["url"]: row for row in map(json.loads, (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines())}
    model = site.model
    url = {page.id: site.base_url(model.hosts[page.host]) + page.path for page in model.pages}
    assert set(stored) == set(url.values())
    copies = {url[page.id]: url[page.copy_of] for page in model.pages if page.copy_of is not None}
    assert copies, "the seed should give some syndicated copies"
    assert {u: row["duplicate_of"] for u, row in stored.items() if row["duplicate_of"]} == copies
    assert all(row["text"] for row in stored.values())


def test_a_run_fetches_each_page_once_while_its_feeds_are_still_coming_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed's pages are claimed and fetched as soon as it is recorded; the batch's own claim
    afterwards (for retries and what earlier runs left) must not take them a second time."""
    monkeypatch.setenv("INGEST_ALLOW_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("INGEST_RAW_STORE", str(tmp_path / "raw"))
    with serve(build(LoadConfig(hosts=3, feeds_per_host=2, articles=30, latency=0.2), STORIES)) as slow:
        feeds = slow.write_feeds_file(tmp_path / "feeds.yaml")
        assert ingest(["run", "--feeds", str(feeds), "--db", f"sqlite:///{tmp_path / 'news.db'}"]) == 0
        assert slow.counts["html"] == 30


def test_the_throughput_benchmark_runs_a_pass_with_extraction_processes() -> None:
    """``python -m ingest.eval throughput`` on a small site: its clocks wrap the stages of a real
    ``ingest run``, and a wrapped function handed to the extraction processes must still pickle."""
    done = subprocess.run(
        [sys.executable, "-m", "ingest.eval", "throughput", "--hosts", "2", "--articles", "30", "--latency", "0", "--no-fetch-only"],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "INGEST_BENCHMARKS_DIR": str(STORIES)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "first pass / baseline" in done.stdout and "articles" in done.stdout


def test_the_load_site_without_its_stories_says_where_to_point_it(tmp_path: Path) -> None:
    """A fresh clone without ``../shared`` beside it gets one line saying what to pass, not a traceback."""
    result = subprocess.run([sys.executable, "-m", "ingest.load_site", "--bench", str(tmp_path), "--out", str(tmp_path / "site")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "pass --bench DIR or set INGEST_BENCHMARKS_DIR" in result.stderr
