"""``python -m ingest.eval extraction [--data DIR]``: print the benchmark tables."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[2]


def _benchmarks() -> Path:
    """``$INGEST_BENCHMARKS_DIR``, else ``../shared/benchmarks`` beside the repository."""
    return Path(os.environ.get("INGEST_BENCHMARKS_DIR", REPO.parent / "shared" / "benchmarks"))


def extraction(args: argparse.Namespace, console: Console) -> int:
    from ingest.eval.extraction import METADATA, evaluate, fixtures

    root = args.data or _benchmarks() / "article-extraction-benchmark"
    if not (root / "ground-truth.json").exists():
        console.print(f"error: no article-extraction-benchmark at {root} (pass --data or set INGEST_BENCHMARKS_DIR)")
        return 2
    report = evaluate(root, args.limit)
    table = Table(title=f"article-extraction-benchmark, {report.pages} pages, {date.today()}, ±95 % bootstrap")
    for column in ("system", "precision", "recall", "F1", "pages/s", "speed vs default"):
        table.add_column(column, justify="left" if column == "system" else "right")
    baseline = None
    for row in report.rows:
        value, interval, rate = row.result(args.bootstrap)
        baseline = baseline or rate
        table.add_row(
            row.name,
            f"{value.precision:.3f} ± {interval.precision:.3f}",
            f"{value.recall:.3f} ± {interval.recall:.3f}",
            f"{value.f1:.3f} ± {interval.f1:.3f}",
            f"{rate:.1f}",
            f"{rate / baseline:.2f}",
        )
    console.print(table)
    console.print("news-ingest metadata filled: " + ", ".join(f"{m} {report.filled[m] / report.pages:.0%}" for m in METADATA))

    pages = Table(title="pages with known body and boilerplate (whole paragraphs)")
    pages.add_column("corpus: system")
    for column in ("pages", "body kept", "boilerplate kept"):
        pages.add_column(column, justify="right")
    pages.add_column("metadata filled")
    for row in fixtures():
        filled = ", ".join(f"{m} {row.filled[m] / row.pages:.0%}" for m in METADATA) if any(row.filled.values()) else "-"
        pages.add_row(row.name, str(row.pages), f"{row.body_kept}/{row.body}", f"{row.boilerplate_kept}/{row.boilerplate}", filled)
    console.print(pages)
    console.print("The sample site's site-template line is removed from the corpus by deduplication, not by page rules.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.eval", description="Measure news-ingest against public benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True)
    ext = commands.add_parser("extraction", help="article-extraction-benchmark: news-ingest beside plain trafilatura")
    ext.add_argument("--data", type=Path, help="the benchmark folder (ground-truth.json, html/)")
    ext.add_argument("--limit", type=int, help="only the first N pages (a quick look)")
    ext.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the intervals")
    ext.set_defaults(func=extraction)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    return args.func(args, Console(soft_wrap=True, width=max(120, Console().width)))


if __name__ == "__main__":
    sys.exit(main())
