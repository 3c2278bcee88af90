"""The load site's command-line options, shared by ``python -m ingest.load_site`` and ``python -m ingest.eval throughput``."""

from __future__ import annotations

import argparse

from ingest.load_site.model import LoadConfig


def add_options(parser: argparse.ArgumentParser, *, latency: float) -> None:
    """Options for every ``LoadConfig`` field; ``latency`` is the command's default (serving: 0, benchmark: 0.2 s)."""
    parser.add_argument("--hosts", type=int, default=50, help="sites, one loopback address each from 127.0.0.2")
    parser.add_argument("--feeds-per-host", type=int, default=4)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--syndicated", type=float, default=0.1, help="share of articles that are another host's story, lightly edited")
    parser.add_argument("--latency", type=float, default=latency, help="seconds before every response")
    parser.add_argument("--bandwidth", type=float, help="bytes per second per response (default: unlimited)")
    parser.add_argument("--seed", type=int, default=1)


def config_from(args: argparse.Namespace) -> LoadConfig:
    return LoadConfig(args.hosts, args.feeds_per_host, args.articles, args.syndicated, args.latency, args.bandwidth, args.seed)
