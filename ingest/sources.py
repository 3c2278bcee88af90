"""The feeds file: which feeds to read, and per-feed settings.

```yaml
feeds:
  - name: harbor-daily
    url: https://harbor.example/feed.xml
  - name: valley-post
    url: https://valley.example/atom.xml
    sitemap: https://valley.example/news-sitemap.xml   # where backfills find older articles
    respect_robots: false   # only where the source's terms allow it
```
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.errors import UserError

MANUAL = "manual"  # the source name of article URLs ingested by hand: no feed may take it


class FeedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w.\- ]+$")
    url: str = Field(max_length=2048)
    sitemap: str | None = Field(None, max_length=2048, description="sitemap or sitemap index a backfill reads for older articles")
    respect_robots: bool = Field(True, description="obey robots.txt for this feed's article pages")
    enabled: bool = True

    @field_validator("url", "sitemap")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        parts = urlsplit(url or "")
        if url is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError(f"not an http(s) URL: {url!r}")
        return url


class FeedsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feeds: list[FeedConfig]

    @model_validator(mode="after")
    def _unique_names(self) -> FeedsFile:
        seen: set[str] = set()
        for feed in self.feeds:
            if feed.name == MANUAL:
                raise ValueError(f"the feed name {MANUAL!r} is reserved for article URLs ingested by hand")
            if feed.name in seen:
                raise ValueError(f"feed name {feed.name!r} appears twice")
            seen.add(feed.name)
        return self


def load_feeds(path: Path) -> list[FeedConfig]:
    """Enabled feeds of a feeds file; any mistake becomes one clear ``UserError``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"feeds file not found: {path} (set INGEST_FEEDS_FILE or pass --feeds)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read feeds file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise UserError(f"feeds file {path} is not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise UserError(f"feeds file {path} must be a mapping with a 'feeds:' list")
    try:
        parsed = FeedsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UserError(f"feeds file {path}: {where}: {first['msg']}") from None
    return [feed for feed in parsed.feeds if feed.enabled]
