"""deduplication's queue: extracted articles indexed in publication order

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

Each dedup batch took the first extracted articles by sorting every one of them: a cost
per batch that grew with the backlog. A partial index on the same order serves the head.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_WHERE = sa.text("status = 'extracted'")


def upgrade() -> None:
    op.create_index(
        "ix_articles_dedup_queue",
        "articles",
        [sa.text("coalesce(published, feed_published, discovered_at)"), "id"],
        sqlite_where=_WHERE,
        postgresql_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_articles_dedup_queue", table_name="articles")
