"""Article metadata from what pages declare: JSON-LD, Open Graph and meta tags, then the markup.

trafilatura's own metadata pass also extracts categories, tags and licences
and costs about as much again as the text extraction; this reads only the six
fields the store keeps, in the order publishers' declarations are reliable,
and cleans bylines that CMSs pack with roles and dates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin

import htmldate
import py3langid
from lxml import etree
from lxml.html import HtmlElement

_ARTICLE_TYPES = {"newsarticle", "article", "reportagenewsarticle", "analysisnewsarticle", "blogposting", "report",
                  "opinionnewsarticle", "backgroundnewsarticle", "liveblogposting", "webpage"}
_ROLE_WORDS = re.compile(
    r"\b(?:updated|published|posted|staff|reporter|writer|correspondent|editor|columnist|contributor|"
    r"photographer|bureau|desk|news ?team|\d)",
    re.I,
)
_AUTHOR_SPLIT = re.compile(r"\s*(?:[;|·•/,]|\band\b|&|\s[-–—]\s)\s*", re.I)
_TITLE_SPLIT = re.compile(r"\s*[|｜]\s*|\s+[–—-]\s+|\s+::\s+")
_LANGUAGE = etree.XPath(
    "//html/@lang | //meta[@property='og:locale']/@content | //meta[@http-equiv='content-language']/@content"
)
_PUBLISHED_NAMES = ("article:published_time", "og:article:published_time", "datepublished", "pubdate", "publishdate",
                    "date", "dc.date", "dc.date.issued", "sailthru.date", "parsely-pub-date")
_PUBLISHED = etree.XPath(
    "//*[@itemprop='datePublished']/@datetime | //article//time[@datetime]/@datetime | //time[@pubdate][@datetime]/@datetime"
)
_JSON_LD = etree.XPath("//script[@type='application/ld+json']/text()")
_METAS = etree.XPath("//meta[@content]")
_CANONICAL = etree.XPath("//link[@rel='canonical']/@href")
_HEADING = etree.XPath("normalize-space((//article//h1 | //h1)[1])")
_TITLE = etree.XPath("normalize-space(//head/title)")
_AUTHOR_MARKUP = etree.XPath(
    "normalize-space((//*[@rel='author'] | //*[@itemprop='author'] |"
    " //*[contains(concat(' ', normalize-space(@class), ' '), ' byline ')])[1])"
)


@dataclass(frozen=True)
class Metadata:
    title: str | None = None
    author: str | None = None
    published: datetime | None = None
    published_day_only: bool = False  # found by htmldate in the text, not declared: midnight UTC of a day
    url: str | None = None
    site_name: str | None = None
    language: str | None = None


def _metas(tree: HtmlElement) -> dict[str, str]:
    """``<meta>`` contents by lower-cased property or name (the first non-empty one wins)."""
    found: dict[str, str] = {}
    for element in _METAS(tree):
        text = " ".join(element.get("content", "").split())
        for key in (element.get("property"), element.get("name"), element.get("itemprop")):
            if key and text:
                found.setdefault(key.lower(), text)
    return found


def _meta(metas: dict[str, str], *names: str) -> str | None:
    return next((metas[name] for name in names if name in metas), None)


def _json_ld(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    """Every JSON-LD object on the page, @graph members included; broken scripts are skipped."""
    for script in _JSON_LD(tree):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, dict):
                yield item
                graph = item.get("@graph")
                if isinstance(graph, list):
                    stack.extend(graph)
            elif isinstance(item, list):
                stack.extend(item)


def _article_ld(tree: HtmlElement) -> dict[str, Any]:
    for item in _json_ld(tree):
        kinds = item.get("@type", [])
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if any(str(kind).lower() in _ARTICLE_TYPES for kind in kinds) and (item.get("headline") or item.get("datePublished")):
            return item
    return {}


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return _names(value.get("name"))
    if isinstance(value, list):
        return [name for item in value for name in _names(item)]
    return []


def clean_author(raw: str | None, site_name: str | None = None) -> str | None:
    """Names only: "Jane Doe; Harbor Ledger · Updated Mar 5" → "Jane Doe"."""
    if not raw:
        return None
    raw = re.sub(r"^(?:by|written by|von|par|por)\s+", "", " ".join(raw.split()), flags=re.I)
    site = (site_name or "").casefold()
    names: list[str] = []
    for part in _AUTHOR_SPLIT.split(raw):
        part = part.strip(" .:-")
        if not part or len(part) > 60 or _ROLE_WORDS.search(part) or part.casefold() == site or part.startswith("http"):
            continue
        if part not in names:
            names.append(part)
    return "; ".join(names[:5]) or None


def _parse_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # "0001-01-01T00:00:00+09:00" overflows when moved to UTC
        return None


def _published(tree: HtmlElement, metas: dict[str, str], ld: dict[str, Any]) -> tuple[datetime | None, bool]:
    """The declared publication time, to the second where declared; else htmldate's day
    (and True: only a day is known)."""
    declared = ld.get("datePublished")
    candidates = [declared if isinstance(declared, str) else None, _meta(metas, *_PUBLISHED_NAMES)]
    for value in [*filter(None, candidates), *map(str, _PUBLISHED(tree))]:
        if (parsed := _parse_datetime(value)) is not None:
            return parsed, False
    for extensive in (False, True):  # the quick search finds most dates at a fifth of the cost
        if found := htmldate.find_date(tree, extensive_search=extensive, original_date=True, outputformat="%Y-%m-%d"):
            return _parse_datetime(found), True
    return None, False


def _title(tree: HtmlElement, metas: dict[str, str], ld: dict[str, Any], site_name: str | None) -> str | None:
    declared = _meta(metas, "og:title", "twitter:title")
    if declared or isinstance(ld.get("headline"), str):
        return declared or " ".join(ld["headline"].split())
    heading = str(_HEADING(tree))
    if heading and len(heading) < 300:
        return heading
    title = str(_TITLE(tree))
    if title:
        parts = _TITLE_SPLIT.split(title)
        parts = [p for p in parts if p.casefold() != (site_name or "").casefold()] or parts
        return max(parts, key=len)
    return None


def _title_suffix(title: str) -> str | None:
    """"Story headline | Harbor Ledger" → "Harbor Ledger": sites sign their <title> last."""
    parts = _TITLE_SPLIT.split(title)
    return parts[-1] if len(parts) > 1 and len(parts[-1]) <= 60 else None


def language(tree: HtmlElement, text: str) -> str | None:
    """Declared language (html lang, og:locale, Content-Language), else detected from the text."""
    for value in _LANGUAGE(tree):
        code = re.split(r"[-_]", str(value).strip())[0].lower()
        if re.fullmatch(r"[a-z]{2,3}", code):
            return code
    if len(text) >= 40:
        return str(py3langid.classify(text)[0])
    return None


def page_metadata(tree: HtmlElement, url: str | None) -> Metadata:
    """Everything but the language, which needs the extracted text (see ``language``)."""
    ld = _article_ld(tree)
    metas = _metas(tree)
    site_name = (
        _meta(metas, "og:site_name") or next(iter(_names(ld.get("publisher"))), None) or _meta(metas, "application-name")
        or _title_suffix(str(_TITLE(tree)))
    )
    author = clean_author(
        "; ".join(_names(ld.get("author")))
        or _meta(metas, "author", "article:author", "byl", "parsely-author", "dc.creator", "sailthru.author")
        or str(_AUTHOR_MARKUP(tree)),
        site_name,
    )
    declared_url = next((str(v).strip() for v in _CANONICAL(tree) if str(v).strip()), None) or _meta(metas, "og:url")
    page_url = urljoin(url or "", declared_url) if declared_url else url
    published, day_only = _published(tree, metas, ld)
    return Metadata(
        title=_title(tree, metas, ld, site_name),
        author=author,
        published=published,
        published_day_only=day_only,
        url=page_url,
        site_name=site_name,
    )
