"""The ``ingest`` command: the pipeline outside Airflow, through the same code the DAG runs."""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest import __version__
from ingest.db import safe_url
from ingest.errors import UserError
from ingest.settings import Settings

console = Console(stderr=True, soft_wrap=True)


def _settings(args: argparse.Namespace) -> Settings:
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
    table = Table(show_header=False)
    table.add_column("count", style="bold")
    table.add_column("value", justify="right")
    for name, value in stats.items():
        table.add_row(name.replace("_", " "), str(value))
    return table


def cmd_run(args: argparse.Namespace) -> int:
    from ingest.pipeline import deduplicate, ingest_batch, plan, summarize

    settings = _settings(args)
    started = datetime.now(timezone.utc)
    batches = plan(settings)
    columns = (TextColumn("{task.description:<6}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        tasks = {"feed": progress.add_task("feeds", total=0), "page": progress.add_task("pages", total=0)}

        def report(event: str, count: int) -> None:
            if event in tasks:
                progress.advance(tasks[event], count)
            else:
                task = tasks[event.rstrip("s")]
                progress.update(task, total=(progress.tasks[task].total or 0) + count)

        parts = [ingest_batch(settings, batch, report) for batch in batches]
    console.print("deduplicating …")
    parts.append(deduplicate(settings))
    stats = summarize(settings, f"cli__{started:%Y-%m-%dT%H:%M:%S.%f}", parts, started)
    out = Console(soft_wrap=True)
    out.print(f"ingest run · {len(batches)} batch(es) · {safe_url(settings.db_url)}")
    out.print(summary_table(stats))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ingest.export import export_articles

    settings = _settings(args)
    with _output(args.output) as out:
        count = export_articles(settings.db_url, out)
    console.print(f"exported {count} articles" + (f" to {args.output}" if args.output else ""))
    return 0


def _pages(paths: Sequence[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.name.endswith((".html", ".htm", ".html.gz", ".htm.gz")))
        elif path.exists():
            yield path
        else:
            raise UserError(f"no such file or folder: {raw}")


def cmd_extract(args: argparse.Namespace) -> int:
    from ingest.extract import decode_html, extract_page

    pages = list(_pages(args.paths))
    if args.url and len(pages) != 1:
        raise UserError("--url applies to one page; give one file")
    with _output(args.output) as out:
        for path in pages:
            body = path.read_bytes()
            if path.name.endswith(".gz"):
                body = gzip.decompress(body)
            result = extract_page(decode_html(body), args.url)
            record = {
                "file": str(path),
                "url": result.url or args.url,
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
    run.set_defaults(func=cmd_run)

    export = commands.add_parser("export", help="stored articles as JSON Lines")
    export.add_argument("--db", help="database URL (default: $INGEST_DB_URL)")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)

    extract = commands.add_parser("extract", help="extract saved pages (.html, .html.gz, folders) without fetching or storing")
    extract.add_argument("paths", nargs="+", help="files or folders")
    extract.add_argument("--url", help="the page's URL, for one file")
    extract.add_argument("--output", "-o", help="file to write (default: standard output)")
    extract.set_defaults(func=cmd_extract)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )
    for noisy in ("trafilatura", "htmldate", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return args.func(args)
    except UserError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
