"""Parse RSS/Atom bytes into entries with a stable identity.

feedparser is only ever given an in-memory stream: given bytes or a string it
first tries to open them as a path or URL, so a body such as ``/etc/passwd``
would make it read a local file. Entity declarations are stripped first:
feedparser's loose parser expands an internal entity even where expat
refuses, and one 10 KB entity used 10,000 times makes a 100 MB description.
They are stripped from the text feedparser will actually parse, after its own
character decoding: in UTF-16 or UTF-32 without a byte-order mark, or EBCDIC,
``<!ENTITY`` is not those ASCII bytes, and feedparser decodes such feeds itself.
"""

from __future__ import annotations

import calendar
import codecs
import io
import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin

import feedparser
from feedparser.encodings import convert_to_utf8

from ingest.urls import canonicalize_url

log = logging.getLogger(__name__)

_DOCTYPE = re.compile(rb"<!DOCTYPE(?:[^\[>]*)(?:\[.*?\])?\s*>", re.IGNORECASE | re.DOTALL)
_ENTITY_DECL = re.compile(rb"<!ENTITY.*?>", re.IGNORECASE | re.DOTALL)
_WIDE_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")
# UTF-32 before UTF-16: the UTF-32LE mark starts with the UTF-16LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_ENCODING = re.compile(rb"(<\?xml[^>]*?encoding=)([\"'])[^\"']*\2")


class FeedParseError(ValueError):
    """The body is not a feed at all (an HTML page, an empty body, garbage)."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    key: str  # "guid:…" or "url:…"
    url: str  # canonical
    link: str  # as published
    title: str | None
    published: datetime | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    entries: list[FeedEntry]


def defuse_xml(body: bytes) -> bytes:
    """Blank out the DOCTYPE and any entity declarations; re-encode UTF-16/32 so the bytes patterns apply.

    Each is replaced by a space, not removed: removal would splice the text around it,
    and ``<!ENT<!ENTITY x>ITY e "…">`` would become a declaration."""
    if body.startswith(_WIDE_BOMS):
        for encoding in ("utf-32", "utf-16"):
            try:
                body = _XML_ENCODING.sub(rb"\1\2utf-8\2", body.decode(encoding).encode("utf-8"))
                break
            except UnicodeError:
                continue
    return _ENTITY_DECL.sub(b" ", _DOCTYPE.sub(b" ", body))


def _utf8(body: bytes, content_type: str | None) -> bytes:
    """The feed as UTF-8: by its byte-order mark if it has one (which no header overrides),
    else decoded by feedparser's own rules (HTTP charset, XML declaration, sniffing)."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            try:
                return body[len(bom) :].decode(encoding).encode("utf-8")
            except UnicodeDecodeError:
                continue
    decoding: dict[str, object] = {}
    text: bytes = convert_to_utf8({"content-type": content_type or "application/xml"}, body, decoding)
    if not decoding.get("encoding"):
        raise FeedParseError("not a feed: unknown character encoding" + (f" (served as {content_type})" if content_type else ""))
    return text


def _published(entry: feedparser.FeedParserDict) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None


def parse_feed(body: bytes, base_url: str, content_type: str | None = None) -> ParsedFeed:
    """Entries in feed order. Identity is the guid, else the canonical link
    (guids repeated within one fetch are not trusted); an entry without a
    link has nothing to fetch and is left out.

    A feed is judged by what parsed, not by feedparser's ``bozo`` flag (set for
    harmless reasons): no RSS/Atom version, or no entries where parsing failed,
    is an error.
    """
    headers = {"content-location": base_url, "content-type": "application/xml; charset=utf-8"}
    parsed = feedparser.parse(io.BytesIO(defuse_xml(_utf8(body, content_type))), response_headers=headers)
    if not parsed.get("version") or (not parsed.entries and parsed.get("bozo")):
        served = f" (served as {content_type})" if content_type else ""
        problem = parsed.get("bozo_exception")
        raise FeedParseError(f"not a feed{served}" + (f": {problem}" if problem and parsed.get("version") else ""))
    guids = Counter((entry.get("id") or "").strip() for entry in parsed.entries)
    entries: list[FeedEntry] = []
    for entry in parsed.entries:
        link = (entry.get("link") or "").strip()
        if not link or not link.lower().startswith(("http://", "https://", "/")):
            continue  # nothing to fetch
        try:
            link = urljoin(base_url, link)
            url = canonicalize_url(link)
        except ValueError:  # a bad port or host: one unusable entry, not a broken feed
            continue
        title = (entry.get("title") or "").strip() or None
        guid = (entry.get("id") or "").strip()
        key = f"guid:{guid}" if guid and guids[guid] == 1 else f"url:{url}"
        entries.append(FeedEntry(key=key, url=url, link=link, title=title, published=_published(entry)))
    return ParsedFeed(title=parsed.feed.get("title"), entries=entries)


def read_feed(body: bytes, base_url: str, content_type: str | None = None) -> tuple[ParsedFeed | None, str | None]:
    """``parse_feed``, or why the body gave no feed: a feed must never stop the others, whatever
    it holds. A job for the extraction processes, whose results come back pickled."""
    try:
        return parse_feed(body, base_url, content_type), None
    except FeedParseError as exc:
        return None, str(exc)
    except Exception as exc:
        log.exception("feed %s could not be parsed", base_url)
        return None, f"could not parse the feed: {type(exc).__name__}: {exc}"
