"""A bundled sample news site with known ground truth, served on loopback.

Four fictional outlets (WordPress-style, plain CMS, wire service, Korean) with
the boilerplate real sites carry, a syndicated near-duplicate with described
edits, and a sentence two different stories share. The demo and the
integration tests run the pipeline against it and check what reaches storage.
"""

from __future__ import annotations

from ingest.sample_site.content import Article, Edit, Figure, SharedSentence, load_articles, load_site, shared_sentences
from ingest.sample_site.render import boilerplate
from ingest.sample_site.server import RequestRecord, SampleSite, serve

__all__ = [
    "Article",
    "Edit",
    "Figure",
    "RequestRecord",
    "SampleSite",
    "SharedSentence",
    "boilerplate",
    "load_articles",
    "load_site",
    "serve",
    "shared_sentences",
]
