"""``make demo`` and ``make airflow``: the bundled sample site, ingested through real Airflow.

``python -m ingest.demo`` serves the sample site on loopback, runs the
``news_ingest`` DAG once with ``airflow dags test`` on SQLite, and prints the
run summary and where the data went. ``--standalone`` starts ``airflow
standalone`` instead (scheduler, API server and UI on http://localhost:8080)
with the pools imported and the DAG unpaused. Airflow is driven through its
command line (``ingest.local_airflow``), so this package still imports nothing from Airflow.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from sqlalchemy import select

from ingest.cli import summary_table
from ingest.db import open_store, safe_url, session_factory
from ingest.local_airflow import DAGS, airflow, airflow_env, executable, prepare
from ingest.models import Run
from ingest.sample_site import serve

console = Console(soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/demo"), help="where the demo keeps its files")
    parser.add_argument("--port", type=int, default=int(os.environ.get("INGEST_DEMO_PORT", "8765")), help="sample site port (0: any free port)")
    parser.add_argument("--standalone", action="store_true", help="start `airflow standalone` (the UI) instead of one `airflow dags test`")
    args = parser.parse_args(argv)
    if not (DAGS / "news_ingest.py").exists():
        raise SystemExit(f"no DAG at {DAGS}: run the demo from a clone of the repository (pip install -e .)")

    data = args.data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    db_url = os.environ.get("INGEST_DB_URL", f"sqlite:///{data / 'news.db'}")
    with ExitStack() as stack:
        feeds_file = os.environ.get("INGEST_FEEDS_FILE")
        if not feeds_file:
            try:
                site = stack.enter_context(serve(port=args.port))
            except OSError as exc:
                # Another port would change every article URL and the store would see ten new articles.
                raise SystemExit(f"cannot serve the sample site on port {args.port} ({exc.strerror}); "
                                 "stop what uses it, or set INGEST_DEMO_PORT (with a new --data folder)") from None
            feeds_file = str(data / "feeds.yaml")
            site.write_feeds_file(feeds_file)
            console.print(f"sample site: {site.base_url}  ({len(site.feeds)} feeds, listed in {feeds_file})")
        env = airflow_env(
            data / "airflow",
            {
                "INGEST_FEEDS_FILE": feeds_file,
                "INGEST_DB_URL": db_url,
                "INGEST_RAW_STORE": os.environ.get("INGEST_RAW_STORE", str(data / "raw")),
                "INGEST_ALLOW_PRIVATE_NETWORKS": os.environ.get("INGEST_ALLOW_PRIVATE_NETWORKS", "1"),
            },
        )
        log = data / "airflow.log"
        console.print(f"preparing Airflow in {data / 'airflow'} (log: {log}) …")
        if args.standalone:
            prepare(data / "airflow", env, log)
            console.print("starting `airflow standalone`: UI at http://localhost:8080, user admin, password in "
                          f"{data / 'airflow' / 'simple_auth_manager_passwords.json.generated'} (Ctrl-C stops it)")
            return subprocess.run([executable(env), "standalone"], env=env).returncode
        airflow(["db", "migrate"], env, log)
        airflow(["pools", "import", str(DAGS / "pools.json")], env, log)
        console.print("running the news_ingest DAG once with `airflow dags test` …")
        airflow(["dags", "test", "news_ingest"], env, log)

    with session_factory(open_store(db_url))() as session:
        run = session.scalars(select(Run).order_by(Run.id.desc()).limit(1)).one()
    console.print(f"news_ingest run {run.run_id}:")
    console.print(summary_table(run.stats))
    console.print(f"news store: {safe_url(db_url)}\nraw archive: {env['INGEST_RAW_STORE']}\nAirflow log: {log}")
    console.print(f"next: .venv/bin/ingest export --db {db_url} | head -c 2000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
