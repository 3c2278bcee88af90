"""From page bytes to clean paragraphs and metadata.

trafilatura finds the main text; ``ingest.metadata`` reads what the page
declares about itself. Before trafilatura runs, page
regions whose class or id names them as boilerplate (author boxes, share
bars, related links, ads, newsletter and cookie prompts, captions) are
pruned, and their text is remembered so that a caption pasted again as a
body paragraph can be recognised. After it, ``ingest.rules`` removes what
trafilatura keeps.
"""

from __future__ import annotations

import codecs
import functools
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

import lxml.html
import trafilatura
from lxml import etree
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction
from trafilatura.utils import repair_faulty_html

from ingest.metadata import detect_language, page_metadata
from ingest.passages import split_passages
from ingest.rules import Page, Removal, apply_rules

log = logging.getLogger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml")

# Words in class/id/data-* values that name boilerplate: single words, and pairs of
# adjacent words ("author-box", "most_read", "AuthorBio" split at case changes).
_BOILERPLATE_WORDS = frozenset(
    "share sharing sharebar social sharedaddy addthis sns related recommended trending taboola outbrain newsletter "
    "newsletters subscribe subscription signup ad ads advert adverts advertisement advertising adsbygoogle "
    "adslot adunit sponsored promo dfp gpt cookie cookies consent gdpr weather caption captions credit credits "
    "byline mailmagazine".split()
)
_BOILERPLATE_PAIRS = frozenset(
    {(a, b) for a in ("author", "writer", "contributor", "reporter") for b in ("box", "bio", "info", "card", "details", "profile", "block", "about")}
    | {("about", "author"), ("about", "the"), ("td", "author"), ("most", "read"), ("most", "popular"), ("most", "viewed"),
       ("read", "more"), ("also", "read"), ("more", "stories"), ("photo", "credit"), ("mail", "magazine")}
)
_SEPARATORS = str.maketrans("-_.:", "    ")
_CASE_CHANGE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_CAPTION_CLASS = re.compile(r"caption|credit", re.I)
_NEVER_PRUNED = frozenset({"html", "body", "article", "main", "script", "style"})
# Inline elements are part of the sentence around them ("…follows <a class=related-link>a
# ruling</a> that…"); so is anything inside a paragraph.
_INLINE = frozenset({"a", "span", "em", "strong", "b", "i", "u", "small", "sup", "sub", "time", "abbr", "cite", "q", "mark", "code", "img", "br"})
_LABEL_ATTRIBUTES = ("class", "id", "data-qa", "data-testid", "data-component", "data-module")
_LABEL_NAMES = frozenset(_LABEL_ATTRIBUTES)
_CONTENT_CLASS = re.compile(r"(?:entry|article|post|story|main)[-_]?(?:content|body|text)|articlebody", re.I)
_MAX_PRUNED_CHARS = 1500  # a container with more text than this is not boilerplate…
_MAX_PRUNED_PARAGRAPHS = 1  # …nor one holding more paragraphs of 25 words or more
_CHARSET_ALIASES = {  # WHATWG labels Python's codecs do not know
    "windows-874": "cp874", "x-user-defined": "latin-1", "iso-8859-8-i": "iso-8859-8", "windows-31j": "cp932",
    "x-sjis": "shift_jis", "x-euc-jp": "euc_jp", "ks_c_5601-1987": "cp949", "gb2312": "gb18030", "gbk": "gb18030",
    "x-mac-roman": "mac_roman",
}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w-]+)""", re.I)
# trafilatura's parser settings, with lxml's element class lookup (in C) instead of lxml.html's,
# which runs a Python function for every element object made (by us, trafilatura, readability,
# justext): about 7 % of the time of an extraction. Every element is still an HtmlElement;
# only lxml.html's form element classes (which nothing here uses) are not made.
_PARSER = lxml.html.HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True, remove_pis=True)
_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity)
)


@dataclass
class Extraction:
    paragraphs: list[str]
    removed: list[Removal] = field(default_factory=list)
    title: str | None = None
    author: str | None = None
    published: datetime | None = None
    published_day_only: bool = False  # the page gave only a day: a feed's timestamp is better
    url: str | None = None  # the page's own canonical URL
    site_name: str | None = None
    language: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """A byte-order mark first (it overrides any label, as in browsers), then the charset from
    the Content-Type header, else a <meta> tag, else UTF-8, else windows-1252 (the web's legacy
    default) when nothing was declared; labels Python does not know (windows-874,
    x-user-defined, …) and undecodable bytes never raise."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace")
    candidates: list[str] = []
    if content_type and "charset=" in content_type.lower():
        candidates.append(content_type.lower().split("charset=")[-1].split(";")[0].strip(" \"'"))
    if meta := _CHARSET.search(body[:4096]):
        candidates.append(meta.group(1).decode("ascii", "ignore").lower())
    for label in [*candidates, "utf-8", *([] if candidates else ["windows-1252"])]:
        try:
            return body.decode(_CHARSET_ALIASES.get(label, label))
        except (LookupError, UnicodeDecodeError):
            continue
    for label in candidates:
        try:
            return body.decode(_CHARSET_ALIASES.get(label, label), errors="replace")
        except LookupError:
            continue
    return body.decode("utf-8", errors="replace")


def _parse_bytes(html: str) -> HtmlElement | None:
    try:
        return lxml.html.fromstring(html.encode("utf-8", "surrogatepass"), parser=_PARSER)
    except (ValueError, etree.LxmlError):
        return None


def _parse_html(html: str) -> HtmlElement | None:
    """The page's tree as ``trafilatura.utils.load_html`` makes it (same repairs, fallbacks
    and rejection of what is not HTML), with ``_PARSER``."""
    beginning = html[:50].lower()
    html = repair_faulty_html(html, beginning)
    try:
        tree = lxml.html.fromstring(html, parser=_PARSER)
    except (ValueError, etree.LxmlError):  # an XML encoding declaration (lxml wants bytes), an empty page
        tree = None
    if tree is None or len(tree) < 1:
        tree = _parse_bytes(html)
    if tree is not None and "html" not in beginning and len(tree) < 2:
        return None
    return tree


def _long_paragraphs(element: HtmlElement) -> int:
    return sum(1 for p in element.iter("p") if len(p.text_content().split()) >= 25)


def _label(element: HtmlElement) -> str:
    return " ".join(filter(None, (element.get(name) for name in _LABEL_ATTRIBUTES)))


def _names_boilerplate(text: str) -> bool:
    words = (text if text.islower() else _CASE_CHANGE.sub(" ", text)).translate(_SEPARATORS).lower().split()
    return not (_BOILERPLATE_WORDS.isdisjoint(words) and _BOILERPLATE_PAIRS.isdisjoint(zip(words, words[1:])))


@functools.lru_cache(maxsize=65536)
def _token(value: str) -> str | None:
    """The whitespace-separated part of an attribute value that names boilerplate
    (cached: a page repeats its few dozen class names on hundreds of elements)."""
    if not _names_boilerplate(value):  # the common case, in one pass over the whole value
        return None
    return next((token for token in value.split() if _names_boilerplate(token)), None)


def _boilerplate_token(element: HtmlElement) -> str | None:
    """What names the element as boilerplate: "figcaption", or the first part of a class, id
    or data-* value that does (unless the element is also labelled as the story's body)."""
    if element.tag == "figcaption":
        return "figcaption"
    for name, value in element.items():
        if name in _LABEL_NAMES and (token := _token(value)) is not None:
            return None if _CONTENT_CLASS.search(_label(element)) else token
    return None


def _prune_boilerplate(tree: HtmlElement) -> list[Removal]:
    """Remove boilerplate containers before trafilatura runs; return what they held.

    One walk over the page in document order that steps over what it removes and over
    paragraphs, so nothing inside either is looked at (nor needs an ancestor check).
    Removed here, they cost trafilatura neither a search for them nor a copy."""
    removed: list[Removal] = []
    pruned: list[HtmlElement] = []
    walk = etree.iterwalk(tree.getroottree(), events=("start",))
    for _event, element in walk:
        token = _boilerplate_token(element)
        if token is not None and element.tag not in _NEVER_PRUNED and element.tag not in _INLINE:
            text = " ".join(element.text_content().split())
            if len(text) <= _MAX_PRUNED_CHARS and _long_paragraphs(element) <= _MAX_PRUNED_PARAGRAPHS:
                pruned.append(element)
                if text:
                    rule = "html_caption" if token == "figcaption" or _CAPTION_CLASS.search(token) else "html_block"
                    removed.append(Removal(rule, text, token))
                walk.skip_subtree()
                continue
        if element.tag == "p":
            walk.skip_subtree()
    for element in pruned:
        if element is not tree:  # like trafilatura's ``prune_xpath``, which never removes the root it is given
            element.drop_tree()  # its tail text stays
    return removed


def extract_page(html: str, url: str | None = None) -> Extraction:
    """Main text as paragraphs with news boilerplate removed, plus metadata."""
    tree = _parse_html(html)
    if tree is None:
        return Extraction(paragraphs=[])
    meta = page_metadata(tree, url)
    pruned = _prune_boilerplate(tree)
    document = trafilatura.bare_extraction(tree, url=url, favor_precision=True, include_comments=False, include_tables=True)
    page = Page(
        paragraphs=split_passages(document.text or "") if document is not None else [],
        title=meta.title,
        author=meta.author,
        site_name=meta.site_name,
        html_captions=[r.text for r in pruned if r.rule == "html_caption"],
    )
    paragraphs, removed = apply_rules(page)
    return Extraction(
        paragraphs=paragraphs,
        removed=pruned + removed,
        title=meta.title,
        author=meta.author,
        published=meta.published,
        published_day_only=meta.published_day_only,
        url=meta.url,
        site_name=meta.site_name,
        language=meta.language or detect_language("\n".join(paragraphs)),
    )


def warm_up() -> None:
    """Nothing: the first job of an extraction process. Unpickling it imports this module, so
    a process starts with what extraction needs before pages arrive, and with nothing else
    (the batch module brought httpx, SQLAlchemy and Alembic too: 0.5 CPU s and 49 MiB more
    in each extraction process)."""


def extract_body(body: bytes, content_type: str | None, url: str | None) -> tuple[Extraction | None, str | None]:
    """A page's extraction, or why there is none; a page that crashes the extractor is skipped, not fatal.
    Fetching and re-extraction from the archive (``ingest.reprocess``) both come through here."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type and media_type not in _HTML_TYPES:
        return None, f"not an HTML page ({media_type})"
    try:
        extraction = extract_page(decode_html(body, content_type), url)
    except Exception as exc:
        log.exception("extraction of %s failed", url)
        return None, f"extraction failed: {type(exc).__name__}: {exc}"
    if not extraction.paragraphs:
        return None, "no article text found on the page"
    return extraction, None
