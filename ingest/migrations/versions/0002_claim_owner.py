"""who holds a page claim

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

A retry of a killed task takes over its own claims at once instead of after the lease.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=250), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("claimed_by")
