"""The persistent LSH index, band key → passage (or article), kept in two tables.

Band keys are hashes, so a batch's new keys land all over the index. Inserted
straight into a B-tree of millions of rows, they rewrite nearly every page of it in
every batch: at a million indexed passages SQLite wrote 475 MiB of write-ahead log
per 5,000 passages. So new keys go to a small *recent* table and are merged into the
*main* table in key order once the recent one holds an eighth as many rows: a page of
the main table is rewritten once per merge instead of once per batch (the two levels
of a log-structured merge tree). Lookups read both tables.

Only deduplication writes here, under its lock, so row counts kept in ``index_meta``
say when to merge without counting millions of rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import BigInteger, Table, cast, delete, func, literal_column, select, text
from sqlalchemy.orm import Session

from ingest.db import AMONG_CHUNK, among
from ingest.models import ArticleKey, IndexMeta, LshKey, RecentArticleKey, RecentLshKey

MIN_RECENT_ROWS = 1 << 20  # the recent table is never merged below this: it is small anyway
MERGE_RATIO = 8  # merge when the recent table holds main rows / MERGE_RATIO
_INSERT_CHUNK = 1 << 16  # index rows written per statement (SQLite) or COPY write (PostgreSQL)


def distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted: ``np.unique`` by sorting. numpy 2.4's ``np.unique`` builds a
    hash set first, 10 to 20 times slower on arrays of mostly distinct integers such as band
    keys (700,000 keys: 0.5 s against 0.03 s)."""
    ordered = np.sort(values, axis=None)
    keep = np.empty(ordered.shape, dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def index_rows(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows to ``BandIndex.add``: each (key, id) pair packed in one int64, ``key << 32 | id``,
    for every key of each row of ``keys`` (one row of band keys per id); ``distinct`` then
    sorts and dedupes them."""
    return (keys.astype(np.int64).ravel() << np.int64(32)) | np.repeat(ids, keys.shape[1])


@dataclass
class Postings:
    """Index rows a lookup found, as two arrays sorted by key, then id: 16 bytes a row,
    where a dict of lists took hundreds (a batch of copies finds a stored original under
    most of its keys). Plus the rows a batch adds as it decides, so that its later items
    meet its earlier ones."""

    keys: np.ndarray
    ids: np.ndarray
    added: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))

    def under(self, keys: np.ndarray) -> list[int]:
        """Ids under each of ``keys``, once per key they are under (the bands shared)."""
        starts, ends = np.searchsorted(self.keys, keys, "left").tolist(), np.searchsorted(self.keys, keys, "right").tolist()
        found = [value for start, end in zip(starts, ends) if end > start for value in self.ids[start:end].tolist()]
        return found + [value for key in keys.tolist() for value in self.added.get(key, ())]

    def add(self, keys: np.ndarray, value: int) -> None:
        """``value`` under each of ``keys``, for this batch only (the index is written later)."""
        for key in keys.tolist():
            self.added[key].append(value)

    def kept(self, ids: np.ndarray) -> Postings:
        """Only the rows naming one of ``ids``."""
        mask = np.isin(self.ids, ids)
        return Postings(self.keys[mask], self.ids[mask])


@dataclass(frozen=True)
class BandIndex:
    main: Table
    recent: Table
    column: str  # what a key points at: passage_id or article_id

    def lookup(self, session: Session, keys: np.ndarray) -> Postings:
        """The rows indexed under any of ``keys``. Rows come packed as one integer each
        (``index_rows``' format) and go straight into an array: a batch of copies finds
        hundreds of thousands, and a Python row object apiece cost tens of MiB."""
        unique = distinct(keys).tolist()
        found: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        for table in (self.main, self.recent):
            packed = cast(table.c.key, BigInteger).op("<<")(literal_column("32")).op("|")(table.c[self.column])
            for start in range(0, len(unique), AMONG_CHUNK):
                result = session.execute(select(packed).where(among(session, table.c.key, unique[start : start + AMONG_CHUNK])))
                found.append(np.fromiter(result.scalars(), dtype=np.int64))
        rows = np.sort(np.concatenate(found))
        return Postings(rows >> np.int64(32), rows & np.int64(0xFFFFFFFF))

    def add(self, session: Session, rows: np.ndarray) -> None:
        """Index ``rows`` (``index_rows``, distinct and sorted: the recent table's B-tree
        then takes them page by page); merge when it is time."""
        if not rows.size:
            return
        main, recent = self._sizes(session)
        _insert(session, self.recent, self.column, rows)
        recent += int(rows.size)
        if recent >= max(MIN_RECENT_ROWS, main // MERGE_RATIO):
            self.merge(session)
            main, recent = main + recent, 0
        self._save(session, main, recent)

    def merge(self, session: Session) -> None:
        """Move the recent rows into the main table, in key order."""
        columns = f"key, {self.column}"
        session.execute(text(f"INSERT INTO {self.main.name} ({columns}) SELECT {columns} FROM {self.recent.name} ORDER BY {columns}"))
        _empty(session, self.recent)

    def clear(self, session: Session) -> None:
        """Remove every row, and the row counts with them."""
        for table in (self.main, self.recent):
            _empty(session, table)
        session.execute(delete(IndexMeta).where(IndexMeta.name == self._meta_name))

    def remove(self, session: Session, ids: Sequence[int]) -> None:
        """Take ``ids`` out of the index (re-extraction: their texts are about to change)."""
        main, recent = self._sizes(session)
        removed = [
            session.execute(delete(table).where(among(session, table.c[self.column], ids))).rowcount  # type: ignore[attr-defined]
            for table in (self.main, self.recent)
        ]
        self._save(session, max(main - removed[0], 0), max(recent - removed[1], 0))

    def _sizes(self, session: Session) -> tuple[int, int]:
        """Rows in the main and the recent table: kept in ``index_meta``, counted once
        for an index written before the counts were kept."""
        stored = session.get(IndexMeta, self._meta_name)
        if stored is not None:
            return int(stored.value["main"]), int(stored.value["recent"])
        count = [session.scalar(select(func.count()).select_from(table)) or 0 for table in (self.main, self.recent)]
        return count[0], count[1]

    def _save(self, session: Session, main: int, recent: int) -> None:
        stored = session.get(IndexMeta, self._meta_name)
        if stored is None:
            session.add(IndexMeta(name=self._meta_name, value={"main": main, "recent": recent}))
        else:
            stored.value = {"main": main, "recent": recent}

    @property
    def _meta_name(self) -> str:
        return f"rows:{self.main.name}"


def _empty(session: Session, table: Table) -> None:
    """Delete every row. Only deduplication, under its lock, reads these tables: PostgreSQL's
    TRUNCATE, whose exclusive lock blocks no one, leaves no dead rows to vacuum."""
    empty = "TRUNCATE" if session.get_bind().dialect.name == "postgresql" else "DELETE FROM"
    session.execute(text(f"{empty} {table.name}"))


def _insert(session: Session, table: Table, column: str, rows: np.ndarray) -> None:
    """Rows in bulk, straight to the driver: COPY on PostgreSQL; on SQLite one statement
    reading a JSON array (a third of ``executemany``'s time, which binds row by row). Both
    take ``_INSERT_CHUNK`` rows at a time: the text of a whole batch's keys took 20 MiB."""
    connection = session.connection()
    chunks = [rows[start : start + _INSERT_CHUNK] for start in range(0, rows.size, _INSERT_CHUNK)]
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy(f"COPY {table.name} (key, {column}) FROM STDIN") as copy:
                for chunk in chunks:
                    keys, ids = (chunk >> np.int64(32)).tolist(), (chunk & np.int64(0xFFFFFFFF)).tolist()
                    copy.write("".join(f"{key}\t{value}\n" for key, value in zip(keys, ids)))
    else:
        for chunk in chunks:
            connection.exec_driver_sql(
                f"INSERT INTO {table.name} (key, {column}) SELECT value >> 32, value & 4294967295 FROM json_each(?)",
                (json.dumps(chunk.tolist()),),
            )


PASSAGES = BandIndex(LshKey.__table__, RecentLshKey.__table__, "passage_id")  # type: ignore[arg-type]
ARTICLES = BandIndex(ArticleKey.__table__, RecentArticleKey.__table__, "article_id")  # type: ignore[arg-type]
