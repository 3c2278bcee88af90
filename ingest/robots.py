"""robots.txt rules per origin, read the RFC 9309 way and cached.

``urllib.robotparser`` does the matching, but its own ``read()`` treats 401/403
as "disallow all" and has no timeout or size cap, so the fetcher fetches and
this module decides: 2xx parse, 4xx allow all, 5xx or unreachable disallow all.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.robotparser import RobotFileParser

import anyio

if TYPE_CHECKING:
    from ingest.http import FetchResult

ROBOTS_MAX_BYTES = 512 * 1024
"""RFC 9309 asks crawlers to parse at least 500 KiB; longer files are cut here."""


def _parseable_lines(text: str) -> list[str]:
    """Lines robotparser can take: it ``int()``s any ``isdigit()`` value, and "Crawl-delay: ²" raises."""
    numeric = ("crawl-delay", "request-rate")
    return [line for line in text.splitlines() if line.isascii() or line.split(":", 1)[0].strip().lower() not in numeric]


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """What one origin's robots.txt lets ``agent`` (a product token) do."""

    agent: str
    parser: RobotFileParser | None = None
    refusal: tuple[str, str] | None = None
    """(error_kind, reason) when everything is refused because robots.txt could not be read."""

    def allows(self, url: str) -> bool:
        if self.refusal is not None:
            return False
        return self.parser is None or self.parser.can_fetch(self.agent, url)

    @property
    def crawl_delay(self) -> float | None:
        """Seconds between requests the site asks for; robotparser ignores fractional values."""
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(self.agent)
        return None if delay is None else float(delay)

    @classmethod
    def from_fetch(cls, result: FetchResult, agent: str) -> RobotsRules:
        if result.status is not None and 200 <= result.status < 300 and result.error is None:
            parser = RobotFileParser()
            text = (result.body or b"").decode("utf-8", errors="replace").removeprefix("\ufeff")
            parser.parse(_parseable_lines(text))
            return cls(agent, parser)
        if result.status is not None and 400 <= result.status < 500:
            return cls(agent)
        if result.error_kind == "blocked":
            return cls(agent, refusal=("blocked", str(result.error)))
        if result.error_kind in ("http", "network", "timeout"):
            return cls(agent, refusal=("robots_unavailable", f"robots.txt unavailable: {result.error}"))
        # Too many redirects, a redirect to another scheme, 3xx without Location:
        # RFC 9309 counts these as "unavailable", which allows everything.
        return cls(agent)


class RobotsCache:
    """Fetches each origin's robots.txt once per ``ttl``, even under concurrent callers."""

    def __init__(self, fetch: Callable[[str], Awaitable[FetchResult]], agent: str, ttl: float) -> None:
        self._fetch = fetch
        self._agent = agent
        self._ttl = ttl
        self._cache: dict[str, tuple[float, RobotsRules]] = {}
        self._locks: dict[str, anyio.Lock] = {}

    def _fresh(self, origin: str) -> RobotsRules | None:
        cached = self._cache.get(origin)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    async def rules(self, origin: str) -> RobotsRules:
        """Rules for ``origin`` (``scheme://host[:port]``), fetching ``/robots.txt`` when stale."""
        rules = self._fresh(origin)
        if rules is not None:
            return rules
        async with self._locks.setdefault(origin, anyio.Lock()):
            rules = self._fresh(origin)
            if rules is None:
                rules = RobotsRules.from_fetch(await self._fetch(f"{origin}/robots.txt"), self._agent)
                self._cache[origin] = (time.monotonic() + self._ttl, rules)
        return rules
