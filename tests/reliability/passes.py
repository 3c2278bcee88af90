"""Whole pipeline passes for the reliability tests, and what they left in the store.

A pass runs either in this process (``run`` from tests/test_failures.py: plan,
ingest_batch, deduplicate, what the DAG's tasks call) or as ``ingest run`` in a
child process, as a user runs it. Peak memory is the ``VmHWM`` (the high-water
mark of the resident set) of the child and of every process under it (the
extraction pool's forkserver and workers), each read from /proc while it runs.
``ru_maxrss`` cannot be used, since on Linux a child's counts the memory of the parent it was forked from
(exec folds the forked copy's high-water mark in), and this test process, with
Airflow loaded, is larger than an ``ingest run``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, IO

import psutil
from sqlalchemy import func, select

from ingest.db import open_store, reading
from ingest.models import Article, ArticleStatus, Capture, Feed, Passage
from ingest.settings import Settings
from tests.conftest import REPO, make_settings
from tests.test_failures import write_feeds

MB = 1_000_000


def pass_settings(tmp_path: Path, db_url: str, feeds: Mapping[str, str], **http: Any) -> Settings:
    """Settings for a pass over ``feeds`` (written to tmp_path/feeds.yaml), loopback allowed."""
    settings = make_settings(tmp_path, db_url, write_feeds(tmp_path / "feeds.yaml", dict(feeds)))
    return settings.model_copy(update={"http": settings.http.model_copy(update=http)})


def environment(settings: Settings) -> dict[str, str]:
    """The INGEST_* variables that give a child process these settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("INGEST_")}
    env.update(
        INGEST_DB_URL=settings.db_url,
        INGEST_FEEDS_FILE=str(settings.feeds_file),
        INGEST_RAW_STORE=settings.raw_store,
        INGEST_ALLOW_PRIVATE_NETWORKS="1" if settings.allow_private_networks else "0",
        INGEST_MAX_PAGE_ATTEMPTS=str(settings.max_page_attempts),
        PYTHONPATH=str(REPO),
    )
    env.update({f"INGEST_HTTP__{name.upper()}": str(value) for name, value in settings.http.model_dump().items()})
    return env


@dataclass(frozen=True)
class CliRun:
    """A finished ``ingest`` process."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int
    """Bytes: the child's own peak resident set (VmHWM), as last seen before it exited."""
    helper_peaks: tuple[int, ...]
    """The same for each process under it (extraction processes and their forkserver)."""

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Cli:
    """``python -m ingest ARGS`` in a child process, its output in files (no pipe can fill up)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        self._out: IO[bytes] = tempfile.TemporaryFile()
        self._err: IO[bytes] = tempfile.TemporaryFile()
        self._started = time.monotonic()
        self._peaks: dict[int, int] = {}  # pid -> VmHWM bytes
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ingest", *args], env=dict(env), cwd=cwd, stdout=self._out, stderr=self._err
        )

    def wait(self, timeout: float) -> CliRun:
        """Wait for the child, watching its peak memory (SIGKILL after ``timeout`` seconds, then fail)."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            self._watch()
            if time.monotonic() > deadline:
                run = self.kill()
                raise AssertionError(f"ingest {self.process.args[3:]} still running after {timeout} s:\n{run.output[-3000:]}")
            time.sleep(0.01)
        return self._finished()

    def kill(self) -> CliRun:
        self.process.kill()
        self.process.wait()
        return self._finished()

    def _watch(self) -> None:
        """Read VmHWM (kB) of the child and its descendants from /proc; it only grows, so the last
        reading before a process exits is its peak."""
        try:
            tree = [self.process.pid, *(p.pid for p in psutil.Process(self.process.pid).children(recursive=True))]
        except psutil.Error:  # exited between poll() and here
            return
        for pid in tree:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:  # exited (or a zombie without its memory) since it was listed
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self._peaks[pid] = max(self._peaks.get(pid, 0), int(line.split()[1]) * 1024)

    def _finished(self) -> CliRun:
        seconds = time.monotonic() - self._started
        outputs = []
        for handle in (self._out, self._err):
            handle.seek(0)
            outputs.append(handle.read().decode("utf-8", "replace"))
            handle.close()
        helpers = tuple(peak for pid, peak in self._peaks.items() if pid != self.process.pid)
        return CliRun(self.process.returncode, outputs[0], outputs[1], seconds, self._peaks.get(self.process.pid, 0), helpers)


def ingest(args: Sequence[str], settings: Settings, *, timeout: float = 60, env: Mapping[str, str] | None = None) -> CliRun:
    """Run ``ingest ARGS`` with these settings and wait for it."""
    return Cli(args, env or environment(settings), Path(settings.raw_store).parent).wait(timeout)


@dataclass(frozen=True)
class FeedState:
    last_error: str | None
    last_status: int | None
    error_count: int
    seconds_backing_off: float | None
    not_modified_count: int


@dataclass(frozen=True)
class ArticleState:
    status: ArticleStatus
    error: str | None
    attempts: int
    passages: int
    text: str
    duplicate: bool


@dataclass(frozen=True)
class Snapshot:
    """What a store holds after a pass, by feed name and by canonical article URL."""

    feeds: dict[str, FeedState]
    articles: dict[str, ArticleState]
    captures: list[tuple[str, str, str | None, int | None, str | None]]
    """(kind, url, final_url, status, error) of every fetch, in order."""
    passages: int
    duplicate_passages: int

    def stored(self) -> set[str]:
        return {url for url, a in self.articles.items() if a.status == ArticleStatus.stored}

    def counts(self) -> dict[str, int]:
        """What "nothing lost, nothing stored twice" compares: the same site must give the same counts."""
        return {
            "articles stored": len(self.stored()),
            "duplicate articles": sum(a.duplicate for a in self.articles.values()),
            "passages": self.passages,
            "duplicate passages": self.duplicate_passages,
        }


def snapshot(db_url: str) -> Snapshot:
    with reading(open_store(db_url)) as session:
        now = time.time()
        feeds = {
            f.name: FeedState(
                f.last_error, f.last_status, f.error_count,
                f.backoff_until.timestamp() - now if f.backoff_until else None, f.not_modified_count,
            )
            for f in session.scalars(select(Feed))
        }
        texts: dict[int, list[str]] = {}
        for article_id, text in session.execute(select(Passage.article_id, Passage.text).order_by(Passage.article_id, Passage.position)):
            texts.setdefault(article_id, []).append(text)
        articles = {
            a.url: ArticleState(a.status, a.error, a.attempts, len(texts.get(a.id, [])), "\n".join(texts.get(a.id, [])), a.duplicate_of_id is not None)
            for a in session.scalars(select(Article))
        }
        captures = [tuple(row) for row in session.execute(
            select(Capture.kind, Capture.url, Capture.final_url, Capture.status, Capture.error).order_by(Capture.id)
        )]
        passages = session.scalar(select(func.count()).select_from(Passage)) or 0
        duplicates = session.scalar(select(func.count()).select_from(Passage).where(Passage.duplicate_of_id.is_not(None))) or 0
    return Snapshot(feeds, articles, captures, passages, duplicates)  # type: ignore[arg-type]


def short(text: str | None, limit: int = 110) -> str:
    """One line of at most ``limit`` characters, for the figures."""
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
