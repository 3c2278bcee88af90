"""``python -m ingest.sample_site``: serve the sample site until Ctrl-C or SIGTERM.

The demo starts it in the background, so the first line printed is the base
URL and SIGTERM ends it cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from ingest.sample_site.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.sample_site", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--feeds-out", type=Path, metavar="PATH", help="write a feeds YAML file listing every feed")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        site = serve(args.host, args.port)
    except OSError as err:
        print(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    with site:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        if args.feeds_out:
            site.write_feeds_file(args.feeds_out)
        print(f"sample news site at {site.base_url}/", flush=True)
        for name, url in site.feeds:
            print(f"  {name}: {url}", flush=True)
        if args.feeds_out:
            print(f"feeds file: {args.feeds_out}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
