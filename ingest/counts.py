"""Counters that add up across pages, batches and mapped tasks (and travel as small XCom dicts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Self


@dataclass
class Counts:
    """Base for dataclasses whose fields are all ``int`` counters defaulting to 0."""

    def add(self, other: Counts) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name, 0))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def total(cls, parts: Iterable[Mapping[str, int]]) -> Self:
        """Sum of dicts such as the ones mapped tasks return; unknown keys are ignored."""
        result = cls()
        for part in parts:
            for field in fields(cls):
                setattr(result, field.name, getattr(result, field.name) + part.get(field.name, 0))
        return result


@dataclass
class RunStats(Counts):
    """The run summary: what the DAG's summarize task logs and ``ingest run`` prints."""

    batches_failed: int = 0
    feeds_fetched: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    feeds_backing_off: int = 0
    sitemaps_fetched: int = 0  # backfills read sitemaps instead of feeds
    sitemaps_failed: int = 0
    entries_new: int = 0
    articles_new: int = 0
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    articles_stored: int = 0
    duplicate_articles: int = 0
    passages_stored: int = 0
    duplicate_passages: int = 0
    template_passages: int = 0
    # re-extraction from the raw archive (backfills, ``ingest reextract``)
    pages_reextracted: int = 0
    pages_unchanged: int = 0
    pages_changed: int = 0  # new passages: back to deduplication
    metadata_updated: int = 0  # same passages, another title, author or date
    pages_missing: int = 0  # bytes no longer in the archive
    copies_requeued: int = 0  # articles that copied a changed one, deduplicated again


# shown only when not zero: the counts of backfills and re-extraction
BACKFILL_COUNTS = ("sitemaps_fetched", "sitemaps_failed", "pages_reextracted", "pages_unchanged", "pages_changed", "metadata_updated", "pages_missing", "copies_requeued")
