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
