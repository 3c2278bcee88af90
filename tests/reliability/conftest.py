"""Reliability tests (faults and attacks) and the document they produce, docs/reliability.md.

The document is written when the session ends, and only when every test of every
module in this folder was collected, ran and passed: a partial run (``-k``, one
module, a skipped PostgreSQL test) or a red one leaves the committed file alone.
"""

from __future__ import annotations

import os
import platform
import shlex
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.reliability import figures

HERE = Path(__file__).resolve().parent
DOCUMENT = REPO / "docs" / "reliability.md"

_expected: set[str] = set()
_passed: set[str] = set()
_failed: set[str] = set()


def _here(node_path: Path) -> bool:
    return node_path.resolve().parent == HERE


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Every test a module here holds, whether or not this run selected it."""
    for node in report.result:
        if isinstance(node, pytest.Item) and _here(node.path):
            _expected.add(node.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed or (report.when == "call" and report.skipped):
        _failed.add(report.nodeid)
    elif report.when == "call" and report.passed:
        _passed.add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    modules = {nodeid.split("::")[0].rsplit("/", 1)[-1] for nodeid in _expected}
    complete = modules == {path.name for path in HERE.glob("test_*.py")} and _expected <= _passed
    if not complete or _failed & _expected:
        return
    args = [os.path.relpath(a, REPO) if os.path.isabs(a) else a for a in session.config.invocation_params.args]
    command = shlex.join(["python", "-m", "pytest", *args])
    machine = f"Python {platform.python_version()}, {os.cpu_count()} cores"
    DOCUMENT.parent.mkdir(exist_ok=True)
    DOCUMENT.write_text(
        figures.render(date=f"{datetime.now(timezone.utc):%Y-%m-%d} ({machine})", command=command),
        encoding="utf-8",
    )
