"""Settings for every stage, read from ``INGEST_*`` environment variables.

Nested groups use ``__``: ``INGEST_HTTP__MAX_BODY_BYTES=1048576`` or
``INGEST_DEDUP__PASSAGE_THRESHOLD=0.75``. The DAG and the CLI build one
``Settings`` and hand each stage only the group it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest import __version__

DEFAULT_USER_AGENT = f"news-ingest/{__version__} (+https://github.com/news-ingest/news-ingest)"


class HttpSettings(BaseModel):
    """One fetcher serves feeds, robots.txt and article pages."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = Field(10.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(20.0, gt=0, description="seconds to wait for each chunk")
    total_timeout: float = Field(60.0, gt=0, description="seconds for a whole fetch, redirects and retries included")
    max_body_bytes: int = Field(15 * 1024 * 1024, gt=0, description="cap on the decompressed body")
    max_redirects: int = Field(5, ge=0)
    retries: int = Field(2, ge=0, description="extra attempts after a 429, a 5xx or a network error")
    retry_backoff: float = Field(1.0, ge=0, description="first back-off in seconds; doubles each attempt")
    max_retry_wait: float = Field(30.0, ge=0, description="longest Retry-After honoured inside one fetch")
    concurrency: int = Field(64, ge=1, description="requests in flight per batch, across all hosts (politeness is per_host_concurrency)")
    per_host_concurrency: int = Field(2, ge=1, description="requests in flight to one host")
    robots_ttl: float = Field(3600.0, ge=0, description="seconds a robots.txt stays cached")
    max_crawl_delay: float = Field(30.0, ge=0, description="longest robots.txt Crawl-delay honoured between requests to one host")


class DedupSettings(BaseModel):
    """MinHash/LSH parameters. They are stored with the index: changing
    ``num_perm``, ``bands``, ``rows``, ``shingle_size`` or ``seed`` needs a new index."""

    shingle: Literal["char", "word"] = Field("word", description="shingles of words (CJK: characters) or of characters")
    shingle_size: int = Field(5, ge=1, le=8, description="characters (or words) per shingle of the normalised passage")
    cjk_shingle_size: int = Field(3, ge=1, le=8, description="characters per shingle of Korean, Japanese and Chinese passages (word shingles)")
    num_perm: int = Field(16, ge=16)
    bands: int = Field(8, ge=1, description="LSH bands: every first appearance has this many rows in the index")
    rows: int = Field(2, ge=1, description="signature values per band")
    seed: int = 1
    passage_threshold: float = Field(0.6, gt=0, le=1, description="exact shingle Jaccard at which a passage is a near-duplicate")
    article_threshold: float = Field(0.6, gt=0, le=1, description="exact shingle Jaccard of two articles' texts that makes the later one a copy")
    min_near_chars: int = Field(40, ge=1, description="shorter passages are only matched exactly")
    template_min_articles: int = Field(3, ge=2, description="articles of one site repeating a passage at their head or foot that make it template text")
    batch_articles: int = Field(1000, ge=1, description="articles decided per transaction: the step's memory follows the candidates of one batch")

    @model_validator(mode="after")
    def _bands_fit(self) -> DedupSettings:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands × rows ({self.bands} × {self.rows}) exceeds num_perm ({self.num_perm})")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", env_nested_delimiter="__", extra="ignore")

    db_url: str = "sqlite:///data/news.db"
    feeds_file: Path = Path("feeds.yaml")
    raw_store: str = Field("data/raw", description="folder or fsspec URL of the raw archive")
    allow_private_networks: bool = Field(False, description="let the fetcher reach loopback and private addresses")
    feed_batch_size: int = Field(50, ge=1, description="feeds per mapped Airflow task")
    max_feed_batches: int = Field(16, ge=1, le=1024, description="mapped tasks per run at most: every task pays for its start "
                                  "(Airflow, imports, extraction processes), so thousands of feeds make a few large batches")
    feed_backoff_minutes: float = Field(30.0, ge=0, description="back-off after a failed feed, times its error streak")
    feed_backoff_max_hours: float = Field(168.0, ge=0)
    max_page_attempts: int = Field(3, ge=1, description="fetches of a failing article page before it is given up")
    extract_processes: int = Field(0, ge=0, description="processes extracting a batch's pages: 0 = one per core, 1 = in the batch's own process")
    http: HttpSettings = HttpSettings()
    dedup: DedupSettings = DedupSettings()
