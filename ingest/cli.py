"""The ``ingest`` command: the pipeline outside Airflow, through the same code the DAG runs.

Heavy modules (SQLAlchemy, trafilatura, the pipeline) are imported by the
subcommand that needs them, so ``ingest --help`` answers at once.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from ingest import __version__
from ingest.errors import UserError

if TYPE_CHECKING:
    from ingest.settings import Settings

console = Console(stderr=True, soft_wrap=True)
_PAGE_SUFFIXES = (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz", ".gz")


def _settings(args: argparse.Namespace) -> Settings:
    from pydantic import ValidationError

    from ingest.settings import Settings

    overrides: dict[str, Any] = {}
    if getattr(args, "feeds", None):
        overrides["feeds_file"] = args.feeds
    if getattr(args, "db", None):
        overrides["db_url"] = args.db
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "INGEST_" + "__".join(str(part) for part in first["loc"]).upper()
        raise UserError(f"setting {name}: {first['msg']}") from None


def _existing_store(url: str) -> str:
    """Reading commands must not create an empty SQLite file from a mistyped path."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database if url.startswith("sqlite") else None
    if database and database != ":memory:" and not Path(database).exists():
        raise UserError(f"no news store at {database} (check --db or INGEST_DB_URL)")
    return url


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path in (None, "-"):
        yield sys.stdout
        return
    try:
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    with handle:
        yield handle


def summary_table(stats: dict[str, int]) -> Table:
    """Every count; those of backfills and re-extraction only when not zero."""
    from ingest.counts import BACKFILL_COUNTS

    table = Table(show_header=False)
    table.add_column("count", style="bold")
    table.add_column("value", justify="right")
    for name, value in stats.items():
        if value or name not in BACKFILL_COUNTS:
            table.add_row(name.replace("_", " "), str(value))
    return table


def cmd_run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingest.db import safe_url
    from ingest.pipeline import deduplicate, ingest_batch, plan, summarize

    settings = _settings(args)
    started = datetime.now(timezone.utc)
    # One process needs no batches: every feed in one, so the connection limits and the
    # extraction processes are shared by the whole run instead of one batch at a time.
    feeds = [name for batch in plan(settings) for name in batch]
    columns = (TextColumn("{task.description:<6}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        tasks = {"feed": progress.add_task("feeds", total=0), "page": progress.add_task("pages", total=0)}

        def report(event: str, count: int) -> None:
            if event in tasks:
                progress.advance(tasks[event], count)
            else:
                task = tasks[event.rstrip("s")]
                progress.update(task, total=(progress.tasks[task].total or 0) + count)

        owner = f"cli@{socket.gethostname()}"  # `ingest run` again here takes over what a killed one claimed
        parts = [ingest_batch(settings, feeds, report, ignore_backoff=args.ignore_backoff, owner=owner)]
        parts.append(deduplicate(settings))
    stats = summarize(settings, f"cli__{started:%Y-%m-%dT%H:%M:%S.%f}", parts, started)
    out = Console(soft_wrap=True)
    out.print(f"ingest run · {len(feeds)} feeds · {safe_url(settings.db_url)}")
    out.print(summary_table(stats))
    if stats["feeds_backing_off"]:
        console.print("some feeds are backing off after errors; `ingest run --ignore-backoff` fetches them now")
    if stats["feeds_failed"] and not (stats["feeds_fetched"] or stats["feeds_not_modified"]):
        console.print("[red]error:[/red] every feed failed; see the warnings above")
        return 1
    return 0


def _when(value: str) -> datetime:
    """An ISO date or date-time; UTC unless it says otherwise."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def cmd_reextract(args: argparse.Namespace) -> int:
    from ingest.counts import BACKFILL_COUNTS
    from ingest.db import safe_url
    from ingest.pipeline import deduplicate, reextract, summarize

    settings = _settings(args)
    _existing_store(settings.db_url)
    started = datetime.now(timezone.utc)
    until = args.until or started
    parts = [reextract(settings, args.since, until, dry_run=args.dry_run)]
    out = Console(soft_wrap=True)
    span = f"pages fetched {args.since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"
    if args.dry_run:
        out.print(f"dry run · {span} · nothing written")
        out.print(summary_table({k: v for k, v in parts[0].items() if k in BACKFILL_COUNTS}))
        return 0
    parts.append(deduplicate(settings))
    stats = summarize(settings, f"reextract__{started:%Y-%m-%dT%H:%M:%S.%f}", parts, started)
    out.print(f"ingest reextract · {span} · {safe_url(settings.db_url)}")
    out.print(summary_table(stats))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ingest.export import export_articles

    settings = _settings(args)
    with _output(args.output) as out:
        count = export_articles(_existing_store(settings.db_url), out)
    console.print(f"exported {count} articles" + (f" to {args.output}" if args.output else ""))
    return 0


def cmd_dedup(args: argparse.Namespace) -> int:
    from ingest.corpus import dedup_jsonl
    from ingest.db import safe_url

    settings = _settings(args)
    try:
        source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise UserError(f"cannot read {args.input}: {exc.strerror}") from None
    with source, _output(args.output) as out:
        stats = dedup_jsonl(settings.db_url, source, out, settings.dedup)
    console.print(f"deduplicated against {safe_url(settings.db_url)}:")
    console.print(summary_table(stats.as_dict()))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from ingest.db import safe_url, stage_store
    from ingest.dedup import rebuild

    settings = _settings(args)
    with stage_store(_existing_store(settings.db_url)) as engine:
        queued, stats = rebuild(engine, settings.dedup)
    console.print(f"rebuilt the index of {safe_url(settings.db_url)}: {queued} stored articles deduplicated again")
    console.print(summary_table(stats.as_dict()))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ingest.db import open_store
    from ingest.stats import RUN_SERIES, clusters, feed_health, runs

    engine = open_store(_existing_store(_settings(args).db_url))
    feeds, history, stories = feed_health(engine), runs(engine, args.runs), clusters(engine, args.clusters)
    if args.json:
        report = {"feeds": [asdict(f) for f in feeds], "runs": [asdict(r) for r in history], "clusters": [asdict(c) for c in stories]}
        print(json.dumps(report, default=str, ensure_ascii=False, indent=1))
        return 0
    out = Console(soft_wrap=True)
    when = "%Y-%m-%d %H:%M"
    table = Table("feed", "last success", "status", "errors", "backing off until", "304s", "last error", title="Feeds")
    for f in feeds:
        share = f"{f.not_modified_share:.0%}" if f.not_modified_share is not None else "-"
        table.add_row(f.name, f"{f.last_success_at:{when}}" if f.last_success_at else "never", str(f.last_status or "-"),
                      str(f.error_count), f"{f.backoff_until:{when}}" if f.backoff_until else "-", share, f.last_error or "")
    out.print(table)
    table = Table("run", "started", *(name.replace("_", " ") for name in RUN_SERIES), title="Runs")
    for r in history:
        table.add_row(r.run_id, f"{r.started_at:{when}}", *(str(r.counts.get(name, 0)) for name in RUN_SERIES))
    out.print(table)
    for story in stories:
        out.print(f"[bold]{story.original.title or story.original.url}[/bold] · first in {story.original.site_name or story.original.source}", highlight=False)
        for copy in story.copies:
            out.print(f"  copied by {copy.site_name or copy.source}: {copy.url}", highlight=False)
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ingest.monitor import create_app
    except ImportError as exc:
        raise UserError(f"the monitor needs the monitor extra: pip install 'news-ingest[monitor]' ({exc.name} is missing)") from None
    url = _existing_store(_settings(args).db_url)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        console.print("[yellow]warning:[/yellow] the monitor has no login of its own; behind Airflow it uses Airflow's (see the README)")
    uvicorn.run(create_app(url), host=args.host, port=args.port, log_level="warning")
    return 0


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml")) and b"<html" in body[:4096].lower()


def _pages(paths: Sequence[str]) -> Iterator[tuple[Path, bytes]]:
    """Saved pages as bytes: .html/.htm files and gzipped ones (the raw archive's *.gz too,
    where a gzipped file that is not HTML, such as an archived feed, is skipped)."""
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UserError(f"no such file or folder: {raw}")
        files = sorted(p for p in path.rglob("*") if p.name.endswith(_PAGE_SUFFIXES)) if path.is_dir() else [path]
        for file in files:
            body = file.read_bytes()
            if file.name.endswith(".gz"):
                try:
                    body = gzip.decompress(body)
                except (OSError, EOFError) as exc:
                    raise UserError(f"{file}: not a gzip file ({exc})") from None
            if path.is_dir() and not _looks_like_html(body):
                continue
            yield file, body


def cmd_extract(args: argparse.Namespace) -> int:
    from ingest.extract import decode_html, extract_page
    from ingest.urls import canonicalize_url

    url = canonicalize_url(args.url) if args.url else None
    pages = _pages(args.paths)
    with _output(args.output) as out:
        for count, (path, body) in enumerate(pages, start=1):
            if url and count > 1:
                raise UserError("--url applies to one page; give one file")
            result = extract_page(decode_html(body), url)
            record = {
                "file": str(path),
                "url": result.url or url,
                "title": result.title,
                "author": result.author,
                "published": result.published.isoformat() if result.published else None,
                "language": result.language,
                "site_name": result.site_name,
                "text": result.text,
                "removed": [r.as_dict() for r in result.removed],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingest", description="Deduplicating news ingestion: feeds to clean, deduplicated text.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step (INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="one full pass: feeds → pages → clean text → dedup → store")
    run.add_argument("--feeds", type=Path, help="feeds YAML file (default: $INGEST_FEEDS_FILE or feeds.yaml)")
    run.add_argument("--db", help="database URL (default: $INGEST_DB_URL or sqlite:///data/news.db)")
    run.add_argument("--ignore-backoff", action="store_true", help="fetch feeds that are backing off after errors too")
    run.set_defaults(func=cmd_run)

    reext = commands.add_parser("reextract", help="re-extract archived pages with today's rules (no fetching), then deduplicate")
    reext.add_argument("--since", type=_when, default=datetime(1970, 1, 1, tzinfo=timezone.utc), help="pages fetched from this date or time (UTC; default: all)")
    reext.add_argument("--until", type=_when, help="pages fetched before this date or time (UTC; default: now)")
    reext.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    reext.add_argument("--db", help="database URL (default: $INGEST_DB_URL)")
    reext.set_defaults(func=cmd_reextract)

    export = commands.add_parser("export", help="stored articles as JSON Lines")
    export.add_argument("--db", help="database URL (default: $INGEST_DB_URL)")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)

    dedup = commands.add_parser("dedup", help="deduplicate a JSON Lines corpus of {id, text} against the store's index")
    dedup.add_argument("--input", "-i", required=True, help="JSON Lines file, one {\"id\", \"text\"} per line (- for standard input)")
    dedup.add_argument("--output", "-o", help="decisions as JSON Lines (default: standard output)")
    dedup.add_argument("--db", help="database URL whose index to use (default: $INGEST_DB_URL)")
    dedup.set_defaults(func=cmd_dedup)

    reindex = commands.add_parser("reindex", help="rebuild the dedup index with the current settings: every stored article is deduplicated again")
    reindex.add_argument("--db", help="database URL (default: $INGEST_DB_URL)")
    reindex.set_defaults(func=cmd_reindex)

    stats = commands.add_parser("stats", help="feed health, recent runs and duplicate clusters")
    stats.add_argument("--db", help="database URL (default: $INGEST_DB_URL)")
    stats.add_argument("--runs", type=int, default=10, help="how many recent runs (default: 10)")
    stats.add_argument("--clusters", type=int, default=5, help="how many duplicate clusters (default: 5)")
    stats.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    stats.set_defaults(func=cmd_stats)

    monitor = commands.add_parser("monitor", help="serve the monitoring page outside Airflow")
    monitor.add_argument("--db", help="database URL (default: $INGEST_DB_URL)")
    monitor.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    monitor.add_argument("--port", type=int, default=8790, help="port (default: 8790)")
    monitor.set_defaults(func=cmd_monitor)

    extract = commands.add_parser("extract", help="extract saved pages (.html, .html.gz, folders) without fetching or storing")
    extract.add_argument("paths", nargs="+", help="files or folders")
    extract.add_argument("--url", help="the page's URL, for one file")
    extract.add_argument("--output", "-o", help="file to write (default: standard output)")
    extract.set_defaults(func=cmd_extract)
    return parser


def _logging(verbose: bool) -> None:
    """Rich output on a terminal; plain unwrapped lines otherwise (CI logs, files, pipes)."""
    handler: logging.Handler
    if console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False, show_time=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    for noisy in ("trafilatura", "htmldate", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _logging(args.verbose)
    try:
        return args.func(args)
    except UserError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except BrokenPipeError:  # `ingest export | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
