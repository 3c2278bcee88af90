"""Extraction quality and speed on the article-extraction-benchmark, side by side with plain trafilatura.

Every system reads the same decoded pages in the same run; only the extraction
call is timed, and each system's speed is its best of three passes. Plain trafilatura runs with its own settings (default,
``favor_precision``, ``favor_recall``); "news-ingest" is ``ingest.extract.extract_page``
(pruning, trafilatura with ``favor_precision``, the news rules).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trafilatura

from ingest.eval.metrics import Match, Scores, bootstrap, match, scores
from ingest.extract import Extraction, decode_html, extract_page

Extractor = Callable[[str, str | None], str]
METADATA = ("title", "author", "published", "url", "site_name", "language")


def _plain(**options: bool) -> Extractor:
    def run(html: str, url: str | None) -> str:
        return trafilatura.extract(html, url=url, **options) or ""

    return run


SYSTEMS: dict[str, Extractor] = {
    "trafilatura (default)": _plain(),
    "trafilatura favor_precision": _plain(favor_precision=True),
    "trafilatura favor_recall": _plain(favor_recall=True),
}


@dataclass
class Row:
    name: str
    matches: list[Match] = field(default_factory=list)
    seconds: float = 0.0

    def result(self, rounds: int) -> tuple[Scores, Scores, float]:
        return scores(self.matches), bootstrap(self.matches, rounds), len(self.matches) / self.seconds


@dataclass
class Report:
    pages: int
    rows: list[Row]
    filled: dict[str, int]  # metadata field → pages where news-ingest found it


def load_benchmark(root: Path) -> list[tuple[str, str, str | None, str]]:
    """(key, decoded html, url, true article body) per page, sorted by key."""
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for key in sorted(truth):
        html = decode_html(gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes()))
        pages.append((key, html, truth[key].get("url"), truth[key].get("articleBody", "")))
    return pages


def evaluate(root: Path, limit: int | None = None, timing_rounds: int = 3) -> Report:
    """Scores from one pass; speed from the best of ``timing_rounds`` passes per system.

    Within a pass the systems take turns on each page, starting with a different one on
    each page, so none always meets a page first (cold caches) or last."""
    pages = load_benchmark(root)[:limit]
    systems: dict[str, Callable[[str, str | None], Extraction | str]] = {**SYSTEMS, "news-ingest": extract_page}
    rows = {name: Row(name) for name in systems}
    _key, html, url, _truth = pages[0]
    for extract in systems.values():  # warm up: one-time loading (models, caches) is not per-page cost
        extract(html, url)
    filled = dict.fromkeys(METADATA, 0)
    best = dict.fromkeys(systems, float("inf"))
    names = list(systems)
    for round_ in range(timing_rounds):
        seconds = dict.fromkeys(systems, 0.0)
        for index, (_key, html, url, truth) in enumerate(pages):
            for name in names[index % len(names) :] + names[: index % len(names)]:
                started = time.perf_counter()
                result = systems[name](html, url)
                seconds[name] += time.perf_counter() - started
                if round_ == 0:
                    rows[name].matches.append(match(truth, result.text if isinstance(result, Extraction) else result))
                    if isinstance(result, Extraction):
                        for field_name in METADATA:
                            filled[field_name] += getattr(result, field_name) is not None
        best = {name: min(best[name], seconds[name]) for name in systems}
    for name, row in rows.items():
        row.seconds = best[name]
    return Report(len(pages), list(rows.values()), filled)


@dataclass
class FixtureRow:
    """Whole-paragraph checks on pages with known body and boilerplate."""

    name: str
    pages: int = 0
    body: int = 0
    body_kept: int = 0
    boilerplate: int = 0
    boilerplate_kept: int = 0
    filled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METADATA, 0))


def _fixture_pages() -> dict[str, list[tuple[str, str | None, list[str], list[str]]]]:
    """(html, url, body paragraphs, boilerplate strings) for the sample site and the held-out pages."""
    from ingest.sample_site import boilerplate, load_articles
    from ingest.sample_site.render import article_page

    base = "http://sample.test"
    sample = [(article_page(a, base), a.url, list(a.body), boilerplate(a)) for a in load_articles(base)]
    heldout_dir = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "heldout"
    truth = json.loads((heldout_dir / "truth.json").read_text(encoding="utf-8")) if heldout_dir.exists() else {}
    heldout = [((heldout_dir / n).read_text(encoding="utf-8"), t["url"], t["body"], t["boilerplate"]) for n, t in sorted(truth.items())]
    return {"sample site": sample, "held-out pages": heldout}


def fixtures() -> list[FixtureRow]:
    """Body paragraphs kept and boilerplate strings kept, plain trafilatura beside news-ingest."""
    plain = SYSTEMS["trafilatura favor_precision"]
    rows: list[FixtureRow] = []
    for corpus, pages in _fixture_pages().items():
        mine, theirs = FixtureRow(f"{corpus}: news-ingest"), FixtureRow(f"{corpus}: trafilatura favor_precision")
        for html, url, body, boilerplate in pages:
            ours = extract_page(html, url)
            for row, text in ((mine, ours.text), (theirs, plain(html, url))):
                flat = " ".join(text.split())
                row.pages += 1
                row.body += len(body)
                row.body_kept += sum(" ".join(b.split()) in flat for b in body)
                row.boilerplate += len(boilerplate)
                row.boilerplate_kept += sum(" ".join(b.split()) in flat for b in boilerplate)
            for name in METADATA:
                mine.filled[name] += getattr(ours, name) is not None
        rows += [theirs, mine]
    return rows
