"""From page bytes to clean paragraphs and metadata.

trafilatura finds the main text and the metadata. Before it runs, page
regions whose class or id names them as boilerplate (author boxes, share
bars, related links, ads, newsletter and cookie prompts, captions) are
pruned, and their text is remembered so that a caption pasted again as a
body paragraph can be recognised. After it, ``ingest.rules`` removes what
trafilatura keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import py3langid
import trafilatura
from lxml.html import HtmlElement
from trafilatura.utils import load_html

from ingest.passages import split_passages
from ingest.rules import Page, Removal, apply_rules

_BOILERPLATE_CLASS = re.compile(
    r"(?:^|[-_])(?:"
    r"author[-_]?(?:box|bio|info|card|details|profile|block|about)|about[-_]?(?:the[-_]?)?author|td[-_]author[-_]\w+|"
    r"share|sharing|social|sharedaddy|addthis|sns|"
    r"related|more[-_]?stories|recommended|read[-_]?more|also[-_]?read|most[-_]?(?:read|popular|viewed)|trending|"
    r"taboola|outbrain|newsletter|subscribe|subscription|signup|paywall|"
    r"ad|ads|advert|advertisement|adsbygoogle|ad[-_]?(?:slot|container|unit|wrap|box)|sponsored|promo|dfp|gpt|"
    r"cookie|consent|gdpr|weather|caption|wp[-_]caption[-_]text|credit|photo[-_]?credit"
    r")(?:$|[-_])",
    re.I,
)
_CAPTION_CLASS = re.compile(r"caption|credit", re.I)
_PRUNE_MARK = "data-ingest-prune"
_LABEL_ATTRIBUTES = ("class", "id", "data-qa", "data-testid", "data-component", "data-module")
_CONTENT_CLASS = re.compile(r"(?:entry|article|post|story|main)[-_]?(?:content|body|text)|articlebody", re.I)
_MAX_PRUNED_CHARS = 1500  # a container with more text than this is not boilerplate…
_MAX_PRUNED_PARAGRAPHS = 1  # …nor one holding more paragraphs of 25 words or more
_META_LANGUAGE = ("//html/@lang", "//meta[@property='og:locale']/@content", "//meta[@http-equiv='content-language']/@content")
_PUBLISHED_XPATH = (
    "//meta[@property='article:published_time' or @name='article:published_time' or @property='og:article:published_time'"
    " or @itemprop='datePublished' or @name='pubdate' or @name='publishdate' or @name='date']/@content"
    " | //*[@itemprop='datePublished']/@datetime | //article//time[@datetime][1]/@datetime"
)
_LD_PUBLISHED = re.compile(r'"datePublished"\s*:\s*"([^"]+)"')
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w-]+)""", re.I)


@dataclass
class Extraction:
    paragraphs: list[str]
    removed: list[Removal] = field(default_factory=list)
    title: str | None = None
    author: str | None = None
    published: datetime | None = None
    url: str | None = None  # the page's own canonical URL
    site_name: str | None = None
    language: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Charset from the Content-Type header, else a <meta> tag, else UTF-8; undecodable bytes replaced."""
    candidates: list[str] = []
    if content_type and "charset=" in content_type.lower():
        candidates.append(content_type.lower().split("charset=")[-1].split(";")[0].strip(" \"'"))
    if meta := _CHARSET.search(body[:4096]):
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    for encoding in [*candidates, "utf-8"]:
        try:
            return body.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode(candidates[0] if candidates else "utf-8", errors="replace")


def _long_paragraphs(element: HtmlElement) -> int:
    return sum(1 for p in element.iter("p") if len(p.text_content().split()) >= 25)


def _mark_boilerplate(tree: HtmlElement) -> list[Removal]:
    """Mark boilerplate containers for trafilatura's ``prune_xpath``; return what they held."""
    removed: list[Removal] = []
    for element in tree.iter():
        if not isinstance(element.tag, str) or element.tag in ("html", "body", "article", "main"):
            continue
        if any(ancestor.get(_PRUNE_MARK) for ancestor in element.iterancestors()):
            continue
        label = " ".join(filter(None, (element.get(name) for name in _LABEL_ATTRIBUTES)))
        tokens = [token for token in label.split() if _BOILERPLATE_CLASS.search(token)]
        if element.tag == "figcaption":
            tokens.append("figcaption")
        if not tokens or _CONTENT_CLASS.search(label):
            continue
        text = " ".join(element.text_content().split())
        if len(text) > _MAX_PRUNED_CHARS or _long_paragraphs(element) > _MAX_PRUNED_PARAGRAPHS:
            continue
        element.set(_PRUNE_MARK, tokens[0])
        if text:
            removed.append(Removal("html_" + ("caption" if _CAPTION_CLASS.search(tokens[0]) or tokens[0] == "figcaption" else "block"), text, tokens[0]))
    return removed


def _parse_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _published(tree: HtmlElement, fallback: str | None) -> datetime | None:
    """The publication time the page declares, to the second when it says so;
    trafilatura's date (a day) otherwise."""
    for value in tree.xpath(_PUBLISHED_XPATH):
        if (parsed := _parse_datetime(str(value))) is not None:
            return parsed
    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        if (match := _LD_PUBLISHED.search(script)) and (parsed := _parse_datetime(match.group(1))) is not None:
            return parsed
    return _parse_datetime(fallback)


def _language(tree: HtmlElement, text: str) -> str | None:
    for xpath in _META_LANGUAGE:
        for value in tree.xpath(xpath):
            code = re.split(r"[-_]", str(value).strip())[0].lower()
            if re.fullmatch(r"[a-z]{2,3}", code):
                return code
    if len(text) >= 40:
        return py3langid.classify(text)[0]
    return None


def extract_page(html: str, url: str | None = None) -> Extraction:
    """Main text as paragraphs with news boilerplate removed, plus metadata."""
    tree = load_html(html)
    if tree is None:
        return Extraction(paragraphs=[])
    pruned = _mark_boilerplate(tree)
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        favor_precision=True,
        include_comments=False,
        include_tables=True,
        with_metadata=True,
        prune_xpath=f"//*[@{_PRUNE_MARK}]",
        date_extraction_params={"extensive_search": True, "original_date": True},
    )
    if document is None:
        return Extraction(paragraphs=[], removed=pruned)
    page = Page(
        paragraphs=split_passages(document.text or ""),
        title=document.title,
        author=document.author,
        html_captions=[r.text for r in pruned if r.rule == "html_caption"],
    )
    paragraphs, removed = apply_rules(page)
    return Extraction(
        paragraphs=paragraphs,
        removed=pruned + removed,
        title=document.title,
        author=document.author,
        published=_published(tree, document.date),
        url=document.url,
        site_name=document.sitename,
        language=_language(tree, "\n".join(paragraphs)),
    )
