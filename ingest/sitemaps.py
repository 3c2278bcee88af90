"""Sitemaps: how a backfill finds articles published before the feed's window.

A feed's ``sitemap`` setting names a sitemap or a sitemap index (news sitemaps
with ``news:publication_date`` are what publishers keep for recent articles;
plain ones carry ``lastmod``). Parsing is lxml with entities, DTDs and network
access off, after the same defusing as feeds; a gzipped sitemap is unpacked
within the body size limit.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin

from lxml import etree

from ingest.feeds import FeedEntry, defuse_xml
from ingest.urls import canonicalize_url

_SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True)


class SitemapError(ValueError):
    """Not a sitemap (an HTML page, an empty body, garbage)."""


@dataclass
class Sitemap:
    entries: list[FeedEntry] = field(default_factory=list)  # articles with their dates
    children: list[tuple[str, datetime | None]] = field(default_factory=list)  # (sitemap URL, lastmod) of an index


def _date(text: str | None) -> datetime | None:
    """W3C datetime (a date, or a date-time with a zone); UTC when it has none."""
    if not text or not text.strip():
        return None
    value = text.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _text(node: etree._Element, path: str) -> str | None:
    found = node.find(path)
    return found.text.strip() if found is not None and found.text else None


def parse_sitemap(body: bytes, base_url: str, max_bytes: int) -> Sitemap:
    """The articles of a urlset (dated by news:publication_date, else lastmod), or the
    child sitemaps of a sitemapindex."""
    if body[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as unpacked:
            body = unpacked.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise SitemapError(f"gzipped sitemap larger than {max_bytes} bytes unpacked")
    try:
        root = etree.fromstring(defuse_xml(body), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"not a sitemap: {exc}") from None
    if root is None:
        raise SitemapError("not a sitemap: empty document")
    sitemap = Sitemap()
    if root.tag == f"{_SM}sitemapindex":
        for node in root.iter(f"{_SM}sitemap"):
            loc = _text(node, f"{_SM}loc")
            if loc:
                sitemap.children.append((urljoin(base_url, loc), _date(_text(node, f"{_SM}lastmod"))))
        return sitemap
    if root.tag != f"{_SM}urlset":
        raise SitemapError(f"not a sitemap: the document is <{etree.QName(root).localname}>")
    for node in root.iter(f"{_SM}url"):
        loc = _text(node, f"{_SM}loc")
        if not loc or not loc.lower().startswith(("http://", "https://", "/")):
            continue
        link = urljoin(base_url, loc)
        try:
            url = canonicalize_url(link)
        except ValueError:
            continue
        published = _date(_text(node, f"{_NEWS}news/{_NEWS}publication_date")) or _date(_text(node, f"{_SM}lastmod"))
        title = _text(node, f"{_NEWS}news/{_NEWS}title")
        sitemap.entries.append(FeedEntry(key=f"url:{url}", url=url, link=link, title=title, published=published))
    return sitemap
