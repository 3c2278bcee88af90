"""Engines, sessions, migrations and the write lock, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import BigInteger, ColumnElement, Engine, Table, any_, bindparam, create_engine, event, func, literal_column, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ingest.errors import UserError
from ingest.memory import release_freed

SQLITE_BUSY_TIMEOUT_MS = 120_000
# Page cache of a connection deduplicating: SQLite's default 2 MiB thrashes on a large LSH
# index. Not larger: at a million indexed passages a probe ran no slower with 16 MiB than with
# 128 MiB (2.3k passages/s both), misses being served from the OS page cache. Other
# connections keep the default: the batch stage's, one per writer thread, each filled 16 MiB
# as the store grew, and a pass's memory grew with the backlog.
SQLITE_INDEX_CACHE_KIB = 16 * 1024
# Write-ahead log pages before a deduplicating connection copies them back to the database
# (SQLite's default: 1,000). A batch rewrites pages all over the recent band-key table, and the
# next batch rewrites most of them again: copied back every ~10,000 pages, each is copied once
# for several batches. At a million indexed passages, 10 % more passages per second (three
# alternated runs each); the log file grows to about 40 MiB.
SQLITE_INDEX_WAL_PAGES = 10_000


def safe_url(url: str) -> str:
    """The URL with its password masked, for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str) -> Engine:
    """An engine that fails with a ``UserError`` when the URL is wrong or the server is unreachable."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(url, parsed.database)
        # No server-side prepared statements: psycopg prepares a statement after five runs, and
        # PostgreSQL may then keep one generic plan for it. A plan made while the LSH index
        # was empty scanned the whole table once it had a million rows (minutes per lookup,
        # in the dedup benchmark); planned for each run, lookups use the index.
        unprepared = {"prepare_threshold": None} if parsed.get_driver_name() == "psycopg" else {}
        engine = create_engine(url, pool_pre_ping=True, connect_args=unprepared)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise UserError(f"invalid database URL {safe_url(url)!r}: {exc}") from None
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(f"cannot connect to database {safe_url(url)}: {reason}") from None
    return engine


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below), and make concurrent task
        # processes wait for each other instead of failing with "database is locked".
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock when the transaction starts: a read transaction
        # that later writes can fail with SQLITE_BUSY, which busy_timeout cannot fix.
        # Readers (see ``reading``) begin deferred and never block the pipeline.
        readonly = connection.get_execution_options().get("ingest_readonly", False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back on error."""
    with session_factory(engine).begin() as session:
        yield session


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Session]:
    """A unit of work that is always rolled back: dry runs go through the writing code."""
    with session_factory(engine)() as session:
        try:
            yield session
            session.flush()
        finally:
            session.rollback()


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A read-only unit of work: on SQLite it does not take the write lock."""
    with Session(engine.execution_options(ingest_readonly=True), expire_on_commit=False) as session, session.begin():
        yield session


AMONG_CHUNK = 20_000  # values per ``among`` lookup: large statements, bounded memory


def among(session: Session, column: ColumnElement[int], values: Sequence[int]) -> ColumnElement[bool]:
    """``column IN (values)`` bound as one parameter (a JSON array on SQLite, an array on
    PostgreSQL): thousands of values without thousands of bind parameters to render."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(BigInteger)))
    return column.in_(select(literal_column("value")).select_from(func.json_each(bindparam(None, json.dumps(list(values))))))


def update_by_id(session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set ``columns`` of ``table``'s rows by id, from ``rows`` (``(id, *values)`` each): one
    statement per ``AMONG_CHUNK`` rows, which it reads as one parameter (a JSON array on SQLite,
    one array per column on PostgreSQL). The ORM's bulk UPDATE by primary key held about 1 KiB
    a row until it returned: 19 MiB when a batch of copies linked 18,000 passages."""
    dialect = session.get_bind().dialect
    names = ["id", *columns]  # read as v.c0, v.c1, ...
    postgres = dialect.name == "postgresql"
    if postgres:
        arrays = ", ".join(f"CAST(:c{n} AS {table.c[name].type.compile(dialect)}[])" for n, name in enumerate(names))
        from_rows = f"unnest({arrays}) AS v({', '.join(f'c{n}' for n in range(len(names)))})"
    else:
        fields = ", ".join(f"json_extract(value, '$[{n}]') AS c{n}" for n in range(len(names)))
        from_rows = f"(SELECT {fields} FROM json_each(:rows)) AS v"
    assign = ", ".join(f"{name} = v.c{n}" for n, name in enumerate(columns, 1))
    statement = text(f"UPDATE {table.name} SET {assign} FROM {from_rows} WHERE {table.name}.id = v.c0")
    for start in range(0, len(rows), AMONG_CHUNK):
        chunk = rows[start : start + AMONG_CHUNK]
        values = {f"c{n}": [row[n] for row in chunk] for n in range(len(names))} if postgres else {"rows": json.dumps([list(row) for row in chunk])}
        session.execute(statement, values)


def unselective(session: Session, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition``, told to SQLite's planner to hold for many rows (``likelihood``), so that
    an index on its column does not drive the query. Without statistics SQLite takes any
    indexed equality for a selective one. ``articles.status = 'stored'`` joined to a lookup of
    a few passages made it scan every stored article and its passages, in every batch; and
    ``status = 'extracted'`` made it sort the whole dedup backlog to take its head, where a
    partial index serves it in order. Both matter exactly when many rows match. PostgreSQL's
    planner has statistics and needs no hint."""
    if session.get_bind().dialect.name == "sqlite":
        return func.likelihood(condition, literal_column("0.9"))  # type: ignore[no-any-return]
    return condition


def for_index(session: Session) -> None:
    """Set this SQLite connection up for the LSH index's B-trees: a page cache of
    ``SQLITE_INDEX_CACHE_KIB`` and a longer write-ahead log (``SQLITE_INDEX_WAL_PAGES``). On
    PostgreSQL the server's buffers and checkpoints serve, and this does nothing."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"PRAGMA cache_size=-{SQLITE_INDEX_CACHE_KIB}"))
        session.execute(text(f"PRAGMA wal_autocheckpoint={SQLITE_INDEX_WAL_PAGES}"))


def lock(session: Session, name: str) -> None:
    """Serialise writers of ``name`` until the transaction ends.

    PostgreSQL takes a transaction-scoped advisory lock; SQLite transactions
    already start with ``BEGIN IMMEDIATE``, which holds the database's only write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())})


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe from several processes)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(b"ingest-migrate")})
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@functools.lru_cache(maxsize=8)
def open_store(url: str) -> Engine:
    """Connect and migrate once per process: what every entry point does first."""
    engine = make_engine(url)
    upgrade(engine)
    return engine


@contextmanager
def stage_store(url: str) -> Iterator[Engine]:
    """The store for one stage of a pass (``open_store``'s engine). When the stage ends,
    its pooled connections are closed, each holding a page cache (``for_index``)
    or a PostgreSQL backend, and the memory the stage freed goes
    back to the system: ``ingest run`` runs the next stage in the same process."""
    engine = open_store(url)
    try:
        yield engine
    finally:
        engine.dispose()
        release_freed()


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """URL of a new PostgreSQL database named ``prefix_<random>``, dropped on exit
    (connections still open are cut): a benchmark or test run that leaves nothing behind."""
    import uuid

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
