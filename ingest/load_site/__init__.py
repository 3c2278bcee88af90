"""A generated, multi-host news site for benchmarks and load tests.

Many hosts (127.0.0.2, 127.0.0.3, ... each one site), thousands of feeds, real
article text from the shared benchmarks in site templates with boilerplate,
syndicated copies across hosts, a configurable latency and bandwidth per
response, and conditional GET (ETag / Last-Modified -> 304). The hand-written
``ingest.sample_site`` checks correctness on a few known pages; this one
checks that the pipeline keeps up with the web's shape and size.
"""

from __future__ import annotations

import os
from pathlib import Path

from ingest.load_site.model import Host, LoadConfig, LoadModel, Page
from ingest.load_site.server import LoadSite, serve
from ingest.load_site.stories import Story, load_stories

__all__ = ["Host", "LoadConfig", "LoadModel", "LoadSite", "Page", "Story", "benchmarks_dir", "build", "serve"]


def benchmarks_dir() -> Path:
    """``$INGEST_BENCHMARKS_DIR``, else ``../shared/benchmarks`` beside the repository."""
    return Path(os.environ.get("INGEST_BENCHMARKS_DIR", Path(__file__).resolve().parents[3] / "shared" / "benchmarks"))


def build(config: LoadConfig, benchmarks: Path | None = None) -> LoadModel:
    """The site for ``config`` with stories from ``benchmarks`` (default: ``benchmarks_dir()``)."""
    return LoadModel(config, load_stories(benchmarks or benchmarks_dir()))
