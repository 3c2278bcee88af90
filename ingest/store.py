"""Small writes shared by the stages: idempotent inserts and the run log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ingest.db import transaction
from ingest.models import Base, Run

_CHUNK = 500


def insert_ignore(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: concurrent workers that find the same
    article both insert it, and the second one is a no-op instead of an error."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(model).on_conflict_do_nothing(), list(rows[start : start + _CHUNK]))


def record_run(engine: Engine, run_id: str, stats: dict[str, Any], started_at: datetime | None = None) -> None:
    """Store (or replace) the summary of one run, so history survives the Airflow metadata DB."""
    now = datetime.now(timezone.utc)
    with transaction(engine) as session:
        run = session.scalar(select(Run).where(Run.run_id == run_id))
        if run is None:
            run = Run(run_id=run_id, started_at=started_at or now)
            session.add(run)
        run.finished_at = now
        run.stats = stats
