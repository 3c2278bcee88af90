"""Helpers the outlet templates share: escaping, the <head>, date formats.

Dates are formatted by hand (not strftime) so the pages do not depend on the
process locale.
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime
from typing import Any

from ingest.sample_site.content import Article, Outlet, Site

MONTHS = ("January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def e(text: str) -> str:
    """Escape text for HTML and XML, quotes included."""
    return html.escape(text, quote=True)


def long_date(dt: datetime) -> str:
    """``June 17, 2025``."""
    return f"{MONTHS[dt.month - 1]} {dt.day}, {dt.year}"


def weekday_date(dt: datetime) -> str:
    """``Tuesday, June 17, 2025``, as a header date widget shows it."""
    return f"{WEEKDAYS[dt.weekday()]}, {long_date(dt)}"


def clock_12h(dt: datetime, *, dotted: bool) -> str:
    """``12:05 p.m.`` (AP style) or ``12:05 PM``."""
    hour = dt.hour % 12 or 12
    suffix = ("a.m." if dt.hour < 12 else "p.m.") if dotted else ("AM" if dt.hour < 12 else "PM")
    return f"{hour}:{dt.minute:02d} {suffix}"


def gmt_offset(dt: datetime) -> str:
    """``GMT+9`` for the article's own offset."""
    offset = dt.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")


def read_minutes(article: Article) -> int:
    words = sum(len(p.split()) for p in article.body)
    return max(1, math.ceil(words / 200))


def summary(article: Article, limit: int = 160) -> str:
    """The first paragraph cut at a word boundary, as CMSs fill meta descriptions."""
    text = article.body[0]
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def others(site: Site, article: Article) -> list[Article]:
    """The outlet's other articles, newest first (related lists, most-read lists)."""
    return sorted(
        (a for a in site.of_outlet(article.outlet) if a.slug != article.slug),
        key=lambda a: a.published,
        reverse=True,
    )


def json_ld(data: dict[str, Any]) -> str:
    """A JSON-LD script block; ``</`` is escaped so text cannot close the tag."""
    text = json.dumps(data, ensure_ascii=False, indent=1).replace("</", "<\\/")
    return f'<script type="application/ld+json">\n{text}\n</script>'


def head(outlet: Outlet, base: str, *, title: str, article: Article | None = None,
         description: str = "", extra: str = "") -> str:
    """``<!DOCTYPE>`` through ``</head>`` with canonical, og: and article: tags."""
    feed_type = "application/atom+xml" if outlet.feed.format == "atom" else "application/rss+xml"
    canonical = base + (article.path if article else outlet.home)
    locale = {"ko": "ko_KR"}.get(outlet.lang.split("-")[0], "en_US")
    tags = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f'<meta name="description" content="{e(description)}">' if description else "",
        f'<link rel="canonical" href="{e(canonical)}">',
        f'<meta property="og:locale" content="{locale}">',
        f'<meta property="og:site_name" content="{e(outlet.name)}">',
        f'<meta property="og:type" content="{"article" if article else "website"}">',
        f'<meta property="og:title" content="{e(article.title if article else outlet.name)}">',
        f'<meta property="og:description" content="{e(description)}">' if description else "",
        f'<meta property="og:url" content="{e(canonical)}">',
    ]
    if article:
        tags += [
            f'<meta property="article:published_time" content="{article.published.isoformat()}">',
            f'<meta property="article:author" content="{e(article.author)}">',
            f'<meta name="author" content="{e(article.author)}">',
        ]
    tags.append(f'<link rel="alternate" type="{feed_type}" title="{e(outlet.name)}" href="{e(base + outlet.feed.path)}">')
    body = "\n".join(t for t in tags if t)
    return (f'<!DOCTYPE html>\n<html lang="{e(outlet.lang)}">\n<head>\n{body}\n{extra}\n</head>\n')
