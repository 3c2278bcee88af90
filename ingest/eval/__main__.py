"""``python -m ingest.eval extraction|dedup|dedup-speed|throughput|airflow``: print the benchmark tables."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from datetime import date
from pathlib import Path
from statistics import median

from rich.console import Console
from rich.table import Table

from ingest.load_site import benchmarks_dir


def extraction(args: argparse.Namespace, console: Console) -> int:
    from ingest.eval.extraction import METADATA, evaluate, fixtures

    root = args.data or benchmarks_dir() / "article-extraction-benchmark"
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


SWEEP: list[dict[str, object]] = [
    {},  # the defaults
    {"shingle": "char", "shingle_size": 5, "passage_threshold": 0.7, "article_threshold": 0.7},
    {"shingle_size": 3},
    {"passage_threshold": 0.5},
    {"passage_threshold": 0.7},
    {"num_perm": 48, "bands": 16, "rows": 3},
    {"num_perm": 64, "bands": 16, "rows": 4},
    {"num_perm": 128, "bands": 32, "rows": 4},
    {"num_perm": 24, "bands": 12, "rows": 2},
    {"num_perm": 16, "bands": 6, "rows": 2},
    {"num_perm": 16, "bands": 4, "rows": 2},
    {"article_threshold": 0.5},
    {"article_threshold": 0.8},
]


def dedup(args: argparse.Namespace, console: Console) -> int:
    from ingest.eval.dedup import EDITS, FALSE_BELOW, MISS_FROM, evaluate_documents, evaluate_passages, evaluate_reuters
    from ingest.settings import DedupSettings

    if args.corpus:
        docs = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
        score = evaluate_documents(args.corpus.name, docs, DedupSettings())
        console.print(f"{score.name}: {len(docs):,} documents, {score.links} duplicate links, precision {score.precision:.4f} "
                      f"(links below {FALSE_BELOW} exact word 5-gram Jaccard, case folded and punctuation dropped: {score.false_links}), recall {score.recall:.4f} "
                      f"({score.truth_pairs} pairs at {MISS_FROM} or more, {score.missed} not merged)")
        for kind, first, second, similarity in score.failures:
            console.print(f"  {kind}: {docs[first]['id']!r} ~ {docs[second]['id']!r}, exact Jaccard {similarity:.3f}")
        return 0
    root = args.data or benchmarks_dir() / "reuters-21578"
    if not (root / "reut2-000.json").exists():
        console.print(f"error: no Reuters-21578 at {root} (pass --data or set INGEST_BENCHMARKS_DIR)")
        return 2
    base = DedupSettings().model_dump()
    table = Table(title=f"deduplication accuracy, {date.today()}: false link = exact word 5-gram Jaccard < 0.6, miss = pair >= 0.9 not merged")
    for column in ("settings", "passages P", "passages R", "edits caught: one word, one number, +sentence, -sentence, reordered, quotes",
                   "merged: shared sentence, numbers changed", "passages/s", "Reuters P", "Reuters R", "Reuters links"):
        table.add_column(column, justify="left" if column in ("settings",) else "right")
    for change in SWEEP if args.sweep else [{}]:
        settings = DedupSettings(**{**base, **change})
        passages, reuters = evaluate_passages(root, settings), evaluate_reuters(root, settings)
        kinds = passages.by_kind
        edits = ", ".join(f"{kinds[k][0] / kinds[k][1]:.2f}" for k in EDITS)
        merged = ", ".join(f"{kinds[k][0]}/{kinds[k][1]}" for k in ("shares a sentence", "numbers changed"))
        label = ", ".join(f"{k}={v}" for k, v in change.items()) or "defaults"
        table.add_row(
            label, f"{passages.precision:.4f}", f"{passages.recall:.4f} ({passages.truth_pairs})", edits,
            merged, f"{passages.rate:,.0f}", f"{reuters.precision:.4f}", f"{reuters.recall:.4f} ({reuters.truth_pairs})",
            str(reuters.links),
        )
        console.print(table) if not args.sweep else None
    if args.sweep:
        console.print(table)
    return 0


def dedup_speed(args: argparse.Namespace, console: Console) -> int:
    import tempfile
    from contextlib import ExitStack

    from ingest.db import open_store, scratch_database
    from ingest.eval.dedup_speed import baseline, measure, sentence_pool
    from ingest.settings import DedupSettings

    root = args.data or benchmarks_dir() / "reuters-21578"
    settings = DedupSettings()
    pool = sentence_pool(root)
    sizes = [int(size) for size in args.sizes.split(",")]
    plain = baseline(pool, args.probe, settings.passage_threshold)
    table = Table(title=f"deduplication speed, {date.today()}: the next {args.probe:,} passages (or a quarter of the index) timed at "
                        f"each index size; plain datasketch loop: {plain:,.0f} passages/s")
    for column in ("store", "indexed passages", "timed passages", "passages/s", "× plain datasketch", "peak memory (MB)", "index bytes/passage"):
        table.add_column(column, justify="left" if column == "store" else "right")
    for store in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        with ExitStack() as stack:
            if store == "sqlite":
                folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="ingest-speed-"))
                url = f"sqlite:///{Path(folder) / 'speed.db'}"
            else:
                url = stack.enter_context(scratch_database(args.pg, "ingest_speed"))
            try:
                points = measure(open_store(url), settings, pool, sizes, args.probe)
            finally:
                open_store.cache_clear()
        for point in points:
            table.add_row(store, f"{point.indexed:,}", f"{point.window:,}", f"{point.passages_per_second:,.0f}", f"{point.passages_per_second / plain:.1f}",
                          f"{point.peak_mb:.0f}", f"{point.index_bytes_per_passage:.0f}")
        console.print(f"{store}: throughput at {points[-1].indexed:,} indexed passages is "
                      f"{points[-1].passages_per_second / points[0].passages_per_second:.2f} × the throughput at {points[0].indexed:,}")
    console.print(table)
    return 0


def throughput(args: argparse.Namespace, console: Console) -> int:
    from ingest.eval.throughput import measure
    from ingest.load_site.options import config_from
    from ingest.settings import Settings

    config = config_from(args)
    http = Settings().http
    load_before = os.getloadavg()[0]
    result = measure(config, fetch_only=not args.no_fetch_only, workers=args.workers)
    first = result.passes[0]
    base_rate = config.articles / result.baseline_seconds
    bandwidth = f"{config.bandwidth / 1e6:g} MB/s" if config.bandwidth else "unlimited"
    table = Table(title=f"throughput, {date.today()}: {config.hosts} hosts, {result.feeds} feeds, {config.articles:,} articles "
                        f"({config.syndicated:.0%} syndicated), {config.latency * 1000:.0f} ms latency, bandwidth {bandwidth}, "
                        f"HTTP concurrency {http.concurrency} ({http.per_host_concurrency} per host), {os.cpu_count()} cores")
    clocks = ("plan", "ingest_batch", "extract cpu", "extract", "store pages", "store feeds", "archive", "deduplicate", "summarize")
    for column in ("run", "wall s", "CPU s main+workers", "articles stored", "articles/s", "peak MiB main/all",
                   "× baseline", "plan", "batches", "extract CPU (threads)", "extract wall (threads)", "store pages", "store feeds",
                   "archive", "dedup", "summarize"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in result.passes:
        stages = [f"{run.clock.get(name, 0.0):.1f}" for name in clocks]
        table.add_row(run.name, f"{run.wall:.1f}", f"{run.cpu:.1f} + {run.workers_cpu:.1f}", f"{run.stored:,}", f"{run.stored / run.wall:.1f}",
                      f"{run.peak_mib:.0f} / {run.tree_peak_mib:.0f}",
                      f"{run.wall / result.baseline_seconds:.2f}", *stages)
    table.add_row(f"extraction-only baseline (trafilatura.extract, {result.baseline_workers} processes)",
                  f"{result.baseline_seconds:.1f}", f"{result.baseline_cpu:.1f}", f"{config.articles:,}", f"{base_rate:.1f}", "", "1.00", *[""] * len(clocks))
    console.print(table)
    ratio = first.wall / result.baseline_seconds
    before, after = (wall for wall, _ in result.baselines)
    console.print(f"first pass / baseline: {ratio:.2f} × (target ≤ 1.3; baseline {before:.1f} s before the passes, {after:.1f} s after, "
                  f"mean {result.baseline_seconds:.1f} s), peak memory {first.tree_peak_mib:.0f} MiB with the extraction "
                  f"processes (target < 1024); "
                  f"duplicate articles {first.counts.get('duplicate_articles', 0)}, "
                  f"duplicate passages {first.counts.get('duplicate_passages', 0)}, template passages {first.counts.get('template_passages', 0)}")
    console.print("first pass, main process peak MiB after each stage: " + ", ".join(f"{stage} {mib:.0f}" for stage, mib in first.peaks))
    console.print("served: " + ", ".join(f"{kind} {n:,}" for kind, n in sorted(result.served.items())) +
                  "; stage columns are seconds summed over calls: batches = fetch + extract + store, overlapped; extraction in "
                  "threads only when a batch is small or INGEST_EXTRACT_PROCESSES=1, else in the workers (CPU column)")
    console.print(f"machine load (1-minute average) before {load_before:.1f}, after {os.getloadavg()[0]:.1f}: "
                  "wall times include whatever else ran; CPU seconds do not")
    return 0


def airflow_scale(args: argparse.Namespace, console: Console) -> int:
    from ingest.eval.airflow_scale import measure
    from ingest.load_site.options import config_from

    config = config_from(args)
    settings = dict(item.split("=", 1) for item in args.set)
    result = measure(config, args.pg, fresh=args.fresh, settings=settings)
    table = Table(title=f"news_ingest under airflow standalone (LocalExecutor), {date.today()}: {config.hosts} hosts, {result.feeds:,} feeds, "
                        f"{config.articles:,} articles, {config.latency * 1000:.0f} ms latency, {os.cpu_count()} cores"
                        + (f"; {' '.join(args.set)}" if args.set else ""))
    for column in ("run", "state", "wall s", "task instances", "batches", "queued wait", "batch run s (median, max)",
                   "articles stored", "articles/s", "feeds 304", "CPU s", "articles per core-hour", "peak MiB all / largest process"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in result.runs:
        batches = sorted(t.run_s for t in run.batches)
        stored = run.counts.get("articles_stored", 0)
        table.add_row(run.name, run.state, f"{run.wall_s:.0f}", str(len(run.tasks)), str(len(batches)), run.queued_summary(),
                      f"{median(batches):.0f}, {batches[-1]:.0f}" if batches else "-", f"{stored:,}",
                      f"{stored / run.wall_s:.1f}" if run.wall_s else "-", f"{run.counts.get('feeds_not_modified', 0):,}",
                      f"{run.cpu_s:.0f}", f"{stored * 3600 / run.cpu_s:,.0f}" if run.cpu_s else "-",
                      f"{run.peak_mib:.0f} / {run.task_peak_mib:.0f}")
    console.print(table)
    first, second = result.runs
    load = os.getloadavg()[0]
    console.print(f"machine load (1-minute average) at the end {load:.1f}: wall times include whatever else ran, CPU seconds do not")
    console.print(f"first run {first.wall_s / 60:.1f} min (target ≤ 15), second run {second.wall_s / 60:.1f} min (target ≤ 3); "
                  f"{result.fresh} articles published between the runs, on {result.changed_feeds} of {result.feeds:,} feeds")
    stored = sum(run.counts.get("articles_stored", 0) for run in result.runs)
    if stored:
        console.print(f"news database {result.store_bytes / 2**20:.0f} MiB and raw archive {result.archive_bytes / 2**20:.0f} MiB for "
                      f"{stored:,} articles: {result.store_bytes / stored * 1e6 / 2**30:.1f} GiB and "
                      f"{result.archive_bytes / stored * 1e6 / 2**30:.1f} GiB per million articles")
    return 0 if all(run.state == "success" for run in result.runs) else 1


def _pg_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pg", default=os.environ.get("INGEST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL URL of a database to create the benchmark's scratch databases from")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.eval", description="Measure news-ingest against public benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True)
    ext = commands.add_parser("extraction", help="article-extraction-benchmark: news-ingest beside plain trafilatura")
    ext.add_argument("--data", type=Path, help="the benchmark folder (ground-truth.json, html/)")
    ext.add_argument("--limit", type=int, help="only the first N pages (a quick look)")
    ext.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the intervals")
    ext.set_defaults(func=extraction)
    ded = commands.add_parser("dedup", help="deduplication accuracy: Reuters-21578 and passages with controlled edits")
    ded.add_argument("--data", type=Path, help="the Reuters-21578 folder (reut2-*.json)")
    ded.add_argument("--corpus", type=Path, help="score your own JSON Lines corpus of {id, text} instead")
    ded.add_argument("--sweep", action="store_true", help="also other shingles, MinHash and thresholds (the README's trade-off table)")
    ded.set_defaults(func=dedup)
    speed = commands.add_parser("dedup-speed", help="deduplication throughput, memory and index size from 10k to 1M passages")
    speed.add_argument("--data", type=Path, help="the Reuters-21578 folder (sentences for the passages)")
    speed.add_argument("--sizes", default="10000,1000000", help="index sizes to measure at (comma separated)")
    speed.add_argument("--probe", type=int, default=5000, help="passages timed at each size (at least; a quarter of the index when that is more)")
    speed.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    _pg_option(speed)
    speed.set_defaults(func=dedup_speed)
    from ingest.load_site.options import add_options

    thr = commands.add_parser("throughput", help="a whole `ingest run` on the generated load site beside plain trafilatura on all cores")
    add_options(thr, latency=0.2)
    thr.add_argument("--workers", type=int, help="baseline processes (default: every core)")
    thr.add_argument("--no-fetch-only", action="store_true", help="skip the pass without extraction")
    thr.set_defaults(func=throughput)
    air = commands.add_parser("airflow", help="the news_ingest DAG under airflow standalone on the load site: two runs, timed")
    add_options(air, latency=0.2)
    air.set_defaults(hosts=250, feeds_per_host=20, articles=10000)
    air.add_argument("--fresh", type=int, default=100, help="articles held back from the first run and published for the second")
    air.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="an environment setting for Airflow and the tasks, e.g. INGEST_MAX_FEED_BATCHES=32 (repeatable)")
    _pg_option(air)
    air.set_defaults(func=airflow_scale)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    # `timeout` and `kill` send SIGTERM: exit through the finally blocks, which stop the servers
    # and Airflow they started and drop their scratch databases.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return args.func(args, Console(soft_wrap=True, width=max(220, Console().width)))


if __name__ == "__main__":
    sys.exit(main())
