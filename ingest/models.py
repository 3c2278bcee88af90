"""The news store: SQLAlchemy 2 models, migrated with Alembic (``ingest/migrations``).

Data moves through the tables in pipeline order: a ``Feed`` yields ``Entry``
rows; each entry points at one ``Article`` (one per canonical URL); a page
fetch is recorded as a ``Capture`` of raw bytes in the archive; extraction
writes the article's ``Passage`` rows; deduplication links each passage to
its first appearance and indexes first appearances in ``LshKey``
(``ingest.band_index``).
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both sides, also on SQLite (which stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class ArticleStatus(str, enum.Enum):
    pending = "pending"  # discovered in a feed, page not fetched yet
    fetching = "fetching"  # claimed by a worker (claimed_at); reclaimed when the claim goes stale
    failed = "failed"  # last fetch or extraction failed; retried up to max_page_attempts
    skipped = "skipped"  # never fetched: robots.txt, not HTML, too many failures
    extracted = "extracted"  # passages written, waiting for deduplication
    stored = "stored"  # deduplicated and final


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(Text)  # the feed's own title: a fallback site name
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_fetched_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    error_count: Mapped[int] = mapped_column(default=0)
    backoff_until: Mapped[datetime | None]
    fetch_count: Mapped[int] = mapped_column(default=0)
    not_modified_count: Mapped[int] = mapped_column(default=0)


class Capture(Base):
    """One HTTP fetch; ``sha256`` names the raw bytes in the archive."""

    __tablename__ = "captures"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "feed" or "page"
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[int | None]
    content_type: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)  # canonical
    raw_url: Mapped[str] = mapped_column(Text)  # the first link seen, trackers and all
    source: Mapped[str] = mapped_column(String(200))  # name of the feed that first listed it
    status: Mapped[ArticleStatus] = mapped_column(
        Enum(ArticleStatus, native_enum=False, length=16), default=ArticleStatus.pending, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[datetime | None]
    # Who holds the claim (an Airflow task instance, a CLI host): when it comes back, as a
    # retry after its worker was killed, it takes its own claims over at once, not after the lease.
    claimed_by: Mapped[str | None] = mapped_column(String(250))
    discovered_at: Mapped[datetime]
    feed_title: Mapped[str | None] = mapped_column(Text)
    feed_published: Mapped[datetime | None]
    capture_id: Mapped[int | None] = mapped_column(ForeignKey("captures.id"))
    title: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    published: Mapped[datetime | None]
    page_url: Mapped[str | None] = mapped_column(Text)  # rel=canonical / og:url of the page
    site_name: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    removed: Mapped[list[Any] | None]  # boilerplate the news rules took out, with the rule's name
    extracted_at: Mapped[datetime | None]
    stored_at: Mapped[datetime | None]
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"), index=True)
    duplicate_share: Mapped[float | None] = mapped_column(Float)

    duplicate_of: Mapped[Article | None] = relationship(remote_side=[id])
    passages: Mapped[list[Passage]] = relationship(
        back_populates="article", order_by="Passage.position", cascade="all, delete-orphan"
    )


# Deduplication takes extracted articles first published first. This partial index holds
# them in that order, so each batch reads the head of the queue instead of sorting the whole
# backlog. A query must name the status as this literal (``WAITING_FOR_DEDUP``), not as a
# bound parameter: SQLite only uses a partial index whose condition the query states.
WAITING_FOR_DEDUP = text("status = 'extracted'")
DEDUP_ORDER = (func.coalesce(Article.published, Article.feed_published, Article.discovered_at), Article.id)
Index("ix_articles_dedup_queue", *DEDUP_ORDER, sqlite_where=WAITING_FOR_DEDUP, postgresql_where=WAITING_FOR_DEDUP)


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (UniqueConstraint("feed_id", "key_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id"))
    key_hash: Mapped[str] = mapped_column(String(40))  # sha1 of ``key``, so long guids index well
    key: Mapped[str] = mapped_column(Text)  # "guid:…", "url:…" or "hash:…"
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str] = mapped_column(Text)
    published: Mapped[datetime | None]
    first_seen_at: Mapped[datetime]


class Passage(Base):
    """A paragraph of clean text; ``duplicate_of`` is the first stored passage it near-duplicates."""

    __tablename__ = "passages"
    __table_args__ = (UniqueConstraint("article_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    norm_hash: Mapped[int] = mapped_column(BigInteger, index=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("passages.id"), index=True)
    similarity: Mapped[float | None] = mapped_column(Float)
    # Site template (a bio, a disclaimer, a "follow us" line the site repeats on its
    # articles): kept here, left out of the article's text.
    template: Mapped[bool] = mapped_column(default=False, server_default=false())

    article: Mapped[Article] = relationship(back_populates="passages")
    duplicate_of: Mapped[Passage | None] = relationship(remote_side=[id])


class LshKey(Base):
    """One LSH band of a first-appearance passage: candidates share at least one key.

    32-bit keys (a false candidate is rare at a million passages and is verified
    away anyway) in a table without rowid on SQLite: the index is the table. No
    foreign key: checking one per row would cost more than the insert itself, and
    only deduplication writes (and removes) these rows. New keys go to
    ``RecentLshKey`` first and are merged here in key order (``ingest.band_index``)."""

    __tablename__ = "lsh_keys"
    __table_args__ = {"sqlite_with_rowid": False}

    key: Mapped[int] = mapped_column(Integer, primary_key=True)
    passage_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class RecentLshKey(Base):
    """``LshKey`` rows written since the last merge: a small table, cheap to insert into."""

    __tablename__ = "recent_lsh_keys"
    __table_args__ = {"sqlite_with_rowid": False}

    key: Mapped[int] = mapped_column(Integer, primary_key=True)
    passage_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class ArticleKey(Base):
    """One LSH band of a whole article's text (articles that are no one's copy): finds
    copies however their paragraphs were split, merged or wrapped."""

    __tablename__ = "article_keys"
    __table_args__ = {"sqlite_with_rowid": False}

    key: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class RecentArticleKey(Base):
    """``ArticleKey`` rows written since the last merge."""

    __tablename__ = "recent_article_keys"
    __table_args__ = {"sqlite_with_rowid": False}

    key: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class IndexMeta(Base):
    """Parameters the LSH index was built with; another set is refused, never mixed in."""

    __tablename__ = "index_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]]


class Run(Base):
    """One pass of the pipeline (a DAG run or ``ingest run``) and its counts."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(String(250), unique=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)

