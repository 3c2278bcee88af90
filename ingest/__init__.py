"""news-ingest: RSS/Atom feeds to clean, deduplicated article text."""

__version__ = "0.1.0"
