"""recent band keys: new LSH keys are merged into the index in key order

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

New keys land in small tables and are merged into ``lsh_keys`` and ``article_keys``
now and then (``ingest.band_index``), instead of each batch rewriting pages all over
a large index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = (("recent_lsh_keys", "passage_id", "lsh_keys"), ("recent_article_keys", "article_id", "article_keys"))


def upgrade() -> None:
    for table, column, _main in _TABLES:
        op.create_table(
            table,
            sa.Column("key", sa.Integer(), nullable=False),
            sa.Column(column, sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("key", column, name=op.f(f"pk_{table}")),
            sqlite_with_rowid=False,
        )


def downgrade() -> None:
    for table, column, main in _TABLES:
        op.execute(f"INSERT INTO {main} (key, {column}) SELECT key, {column} FROM {table}")
        op.drop_table(table)
