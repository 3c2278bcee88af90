"""The store on SQLite and PostgreSQL: migrations, URL mistakes, idempotent inserts, timestamps."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import inspect, select

from ingest.db import make_engine, open_store, safe_url, transaction, upgrade
from ingest.errors import UserError
from ingest.models import Article, ArticleStatus, Feed
from ingest.store import insert_ignore


def test_migrations_create_the_schema_and_are_idempotent(db_url: str) -> None:
    engine = open_store(db_url)
    upgrade(engine)  # again: nothing to do
    tables = set(inspect(engine).get_table_names())
    assert {"feeds", "entries", "articles", "captures", "passages", "lsh_keys", "index_meta", "runs", "alembic_version"} <= tables


def test_insert_ignore_and_utc_round_trip(db_url: str) -> None:
    engine = open_store(db_url)
    now = datetime(2025, 6, 17, 15, 30, tzinfo=timezone.utc)
    row = {"url": "https://n.example/a", "raw_url": "https://n.example/a?utm_source=x", "source": "n",
           "status": ArticleStatus.pending, "attempts": 0, "discovered_at": now}
    for _ in range(2):
        with transaction(engine) as session:
            insert_ignore(session, Article, [row, {**row, "source": "other"}])
    with transaction(engine) as session:
        (article,) = session.scalars(select(Article)).all()
    assert article.source == "n" and article.discovered_at == now and article.discovered_at.tzinfo is not None


def test_url_mistakes_are_user_errors() -> None:
    with pytest.raises(UserError, match="invalid database URL"):
        make_engine("nosuchdialect://x")
    with pytest.raises(UserError, match="cannot connect to database"):
        make_engine("postgresql+psycopg://someone:secret@127.0.0.1:1/db")
    assert "secret" not in safe_url("postgresql+psycopg://someone:secret@127.0.0.1:1/db")


def test_password_never_in_the_error() -> None:
    with pytest.raises(UserError) as info:
        make_engine("postgresql+psycopg://someone:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(info.value)


def test_sqlite_parent_folder_is_created(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = open_store(f"sqlite:///{tmp_path / 'a' / 'b' / 'news.db'}")
    with transaction(engine) as session:
        session.add(Feed(name="x", url="https://x.example/feed"))
    assert (tmp_path / "a" / "b" / "news.db").exists()


def test_readers_do_not_block_writers_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    from ingest.db import reading

    engine = open_store(f"sqlite:///{tmp_path / 'news.db'}")
    wrote = threading.Event()

    def writer() -> None:
        with transaction(engine) as session:
            session.add(Feed(name="w", url="https://w.example/feed"))
        wrote.set()

    with reading(engine) as session:
        session.scalars(select(Feed)).all()
        thread = threading.Thread(target=writer)
        thread.start()
        assert wrote.wait(5), "a write waited for a reader"
    thread.join()


def test_migrations_match_the_models(db_url: str) -> None:
    """Every model change comes with its Alembic migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ingest.models import Base

    engine = open_store(db_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_no_plan_outlives_the_table_size_it_was_made_for(pg_url: str) -> None:
    """psycopg prepares a statement after five runs, and PostgreSQL may then keep one generic
    plan for it: an LSH lookup planned on an empty index went on scanning the whole table
    once it held a million rows. Statements are not prepared on the server."""
    import numpy as np
    from sqlalchemy import text

    from ingest.band_index import PASSAGES

    with transaction(open_store(pg_url)) as session:
        for _ in range(8):
            PASSAGES.lookup(session, np.arange(1, 2001, dtype=np.int64))
        assert session.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one() == 0
