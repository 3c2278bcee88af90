"""``python -m ingest.load_site --hosts 50 --articles 2000 --latency 0.2 --out DIR``: serve until Ctrl-C.

Writes ``DIR/feeds.yaml`` (run ``INGEST_ALLOW_PRIVATE_NETWORKS=1 ingest run --feeds DIR/feeds.yaml``
against it) and, with ``--pages``, every article page under ``DIR/pages/`` for extraction-only baselines.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from ingest.load_site import build, serve
from ingest.load_site.options import add_options, config_from


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.load_site", description=__doc__.splitlines()[0])
    add_options(parser, latency=0.0)
    parser.add_argument("--port", type=int, default=0, help="one port for every address (0: any free one)")
    parser.add_argument("--out", type=Path, default=Path("data/load-site"))
    parser.add_argument("--pages", action="store_true", help="also write every page to OUT/pages/")
    parser.add_argument("--bench", type=Path, help="benchmarks folder (default: $INGEST_BENCHMARKS_DIR or ../shared/benchmarks)")
    args = parser.parse_args(argv)
    config = config_from(args)
    try:
        model = build(config, args.bench)
    except FileNotFoundError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    with serve(model, args.port) as site:
        feeds = site.write_feeds_file(args.out / "feeds.yaml")
        if args.pages:
            site.write_pages(args.out / "pages")
        print(f"{config.hosts} hosts on 127.0.0.2-{site.model.hosts[-1].address} port {site.port}, "
              f"{len(site.feed_urls())} feeds, {len(site.model.pages)} articles; feeds file {feeds}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
