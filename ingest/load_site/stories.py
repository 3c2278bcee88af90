"""Real article text for the load site, read from the shared benchmarks.

The load site must stress extraction and deduplication the way real news does,
so its bodies are real reporting: Reuters-21578 newswire stories (thousands,
hard-wrapped, paragraphs on indented lines) and the article-extraction
benchmark's ground-truth bodies. Only stories with a few paragraphs are kept:
one-line briefs would make extraction look cheaper than it is.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIN_CHARS = 600
MIN_PARAGRAPHS = 3
_REUTERS_TAIL = re.compile(r"\s*Reuter\s*(&#3;)?\s*$", re.IGNORECASE)
_PARAGRAPH = re.compile(r"\n\s{2,}|\n\s*\n")  # Reuters marks paragraphs by indented lines


@dataclass(frozen=True, slots=True)
class Story:
    """One real story: a headline and its body paragraphs (already unwrapped)."""

    title: str
    paragraphs: tuple[str, ...]


def _paragraphs(body: str) -> tuple[str, ...]:
    parts = (" ".join(p.split()) for p in _PARAGRAPH.split(body))
    return tuple(p for p in parts if p)


def _keep(paragraphs: tuple[str, ...]) -> bool:
    return len(paragraphs) >= MIN_PARAGRAPHS and sum(map(len, paragraphs)) >= MIN_CHARS


def reuters_stories(root: Path) -> Iterator[Story]:
    """Reuters-21578 bodies in file order; exact re-files are skipped (the load site makes its own copies)."""
    seen: set[str] = set()
    for path in sorted(root.glob("reut2-*.json")):
        for doc in json.loads(path.read_text(encoding="utf-8")):
            body = html.unescape(_REUTERS_TAIL.sub("", doc.get("body") or ""))
            paragraphs = _paragraphs(body)
            if not _keep(paragraphs) or body in seen:
                continue
            seen.add(body)
            title = html.unescape(doc.get("title") or "").strip().title() or paragraphs[0][:70]
            yield Story(title, paragraphs)


def benchmark_stories(root: Path) -> Iterator[Story]:
    """The article-extraction benchmark's ground-truth bodies (modern, long-form news)."""
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    for item in truth.values():
        paragraphs = tuple(p for p in (" ".join(line.split()) for line in item.get("articleBody", "").split("\n")) if p)
        if _keep(paragraphs):
            yield Story(" ".join(paragraphs[0].split()[:10]).rstrip(".,;:"), paragraphs)


def load_stories(benchmarks: Path) -> list[Story]:
    """Every usable story: benchmark bodies first (the longest), then Reuters."""
    stories: list[Story] = []
    extraction = benchmarks / "article-extraction-benchmark"
    if (extraction / "ground-truth.json").exists():
        stories += benchmark_stories(extraction)
    stories += reuters_stories(benchmarks / "reuters-21578")
    if not stories:
        raise FileNotFoundError(
            f"no benchmark stories under {benchmarks} (article-extraction-benchmark/ or reuters-21578/): "
            "pass --bench DIR or set INGEST_BENCHMARKS_DIR"
        )
    return stories
