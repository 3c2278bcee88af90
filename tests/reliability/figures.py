"""The rows of docs/reliability.md, recorded by the tests that observed them.

Each reliability test records what it saw (what was stored, what was lost, the
reasons on record, peak memory) as one row; ``conftest.py`` writes the document
when the session ends, and only when every test in this folder ran and passed, so
the document always describes one complete, green run and is never typed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    intro: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)


TABLES = {
    "faults": Table(
        "Faults",
        "One `ingest run` over the whole fault site (every fault at once, beside a feed of good articles), then a "
        "second one; each fault's feeds list good pages beside the broken ones. *Stored* counts the good pages "
        "stored after the first pass (the second stored nothing twice and left them unchanged); *lost* is what is "
        "not in the store; the reasons are the exact text of `feeds.last_error` and `articles.error`. Peak RSS is "
        "the `ingest run` process's own maximum resident set size, measured on a pass over that fault and the good "
        "feed alone.",
        ("fault", "what the server does", "stored", "lost", "failures on record", "peak RSS"),
    ),
    "interruptions": Table(
        "Interruptions",
        "A worker killed in the middle of a run, and the database connection dropped in the middle of a task "
        "(`pg_terminate_backend` from a second connection). The retry's store is compared with a clean run's "
        "over the same site.",
        ("interruption", "what happened", "after the retry", "lost", "stored twice"),
    ),
    "attacks": Table(
        "Attacks",
        "A hostile feed on a site the fetcher may reach (the one trusted endpoint: private networks are NOT "
        "allowed) links to each target below, directly and through a redirect from the trusted site; beside "
        "them it lists a good article. Where the target is on loopback, a server listens there and counts the "
        "requests that reach it (`PORT` in the links; a control fetch with private networks allowed does reach it "
        "through every such form). Then feed and page bodies that name local files, and a database password.",
        ("attack", "sent as", "did it get through", "good article beside it", "on record"),
    ),
}


NOTES: list[str] = []
"""Paragraphs under the document's intro (the memory bound and what it was measured against)."""


def note(text: str) -> None:
    NOTES.append(text)


def record(table: str, *cells: str) -> None:
    """One row of ``table``, cells in the order of its columns."""
    columns = TABLES[table].columns
    if len(cells) != len(columns):
        raise ValueError(f"{table} has {len(columns)} columns {columns}, got {len(cells)} cells")
    TABLES[table].rows.append(cells)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "-"


def render(*, date: str, command: str) -> str:
    """The whole document: intro, how it was made, the notes, one table per kind of trouble."""
    blocks = [
        "# Reliability: faults and attacks tried, and what was stored and lost",
        "Written by the test suite (tests/reliability/) from what the tests observed, not by hand: "
        f"`{command}` on {date}. The file is rewritten only when every test there ran and passed.",
        *NOTES,
    ]
    for table in TABLES.values():
        rows = ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
        header = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
        blocks += [f"## {table.title}", table.intro, "\n".join(header + rows)]
    return "\n\n".join(blocks) + "\n"
