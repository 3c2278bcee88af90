"""The sample site's ground truth, loaded from ``content.yaml``.

Tests and the renderer read the same objects, so what a page shows and what
the tests expect cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

CONTENT_FILE = Path(__file__).with_name("content.yaml")

EditOp = Literal["word", "number", "drop", "add"]


@dataclass(frozen=True)
class Figure:
    """An image; ``echo`` is the caption repeated as a body paragraph, as some CMSs do."""

    after: int
    caption: str
    echo: str | None = None


@dataclass(frozen=True)
class AuthorBox:
    name: str
    bio: str


@dataclass(frozen=True)
class Edit:
    """One change a syndicating outlet made; indexes point into the source's and the copy's body."""

    op: EditOp
    source: int | None = None
    copy: int | None = None
    old: str | None = None
    new: str | None = None


@dataclass(frozen=True)
class Feed:
    path: str
    format: Literal["rss", "atom"]
    guids: bool = False
    link_query: str = ""


@dataclass(frozen=True)
class PartnerItem:
    """A feed item pointing at another outlet's article, with its own tracking query."""

    slug: str
    query: str


@dataclass(frozen=True)
class Outlet:
    id: str
    name: str
    lang: str
    home: str
    url: str
    description: str
    feed: Feed
    chrome: dict[str, Any]
    guid: str | None = None
    partner_items: tuple[PartnerItem, ...] = ()


@dataclass(frozen=True)
class Article:
    outlet: str
    slug: str
    id: int
    title: str
    author: str
    byline: str
    published: datetime
    body: tuple[str, ...]
    figures: tuple[Figure, ...]
    path: str
    url: str
    author_box: AuthorBox | None = None
    credit: str | None = None
    contact: str | None = None
    related: str | None = None
    syndicates: str | None = None
    edits: tuple[Edit, ...] = ()

    @property
    def captions(self) -> list[str]:
        """Every caption text shown on the page, each variant once."""
        seen: dict[str, None] = {}
        for fig in self.figures:
            seen[fig.caption] = None
            if fig.echo:
                seen[fig.echo] = None
        return list(seen)


@dataclass(frozen=True)
class SharedSentence:
    """A sentence two different stories quote verbatim: sharing it is not near-duplication."""

    text: str
    articles: tuple[str, str]


@dataclass(frozen=True)
class Site:
    outlets: dict[str, Outlet]
    articles: tuple[Article, ...]
    shared_sentences: tuple[SharedSentence, ...] = field(default=())

    def article(self, slug: str) -> Article:
        for art in self.articles:
            if art.slug == slug:
                return art
        raise KeyError(slug)

    def of_outlet(self, outlet: str) -> list[Article]:
        return [a for a in self.articles if a.outlet == outlet]


def _article_path(outlet: Outlet, slug: str, id_: int, published: datetime) -> str:
    return outlet.url.format(
        slug=slug, id=id_, yyyy=f"{published:%Y}", mm=f"{published:%m}", dd=f"{published:%d}"
    )


def _outlet(oid: str, raw: dict[str, Any]) -> Outlet:
    feed = raw["feed"]
    return Outlet(
        id=oid,
        name=raw["name"],
        lang=raw["lang"],
        home=raw["home"],
        url=raw["url"],
        description=raw["description"],
        feed=Feed(
            path=feed["path"],
            format=feed["format"],
            guids=bool(feed.get("guids", "guid" in raw)),
            link_query=feed.get("link_query", ""),
        ),
        chrome=dict(raw.get("chrome") or {}),
        guid=raw.get("guid"),
        partner_items=tuple(PartnerItem(**p) for p in raw.get("partner_items", ())),
    )


def _article(raw: dict[str, Any], outlets: dict[str, Outlet]) -> Article:
    outlet = outlets[raw["outlet"]]
    published = datetime.fromisoformat(raw["published"])
    if published.tzinfo is None:
        raise ValueError(f"{raw['slug']}: published needs a UTC offset")
    path = _article_path(outlet, raw["slug"], raw["id"], published)
    box = raw.get("author_box")
    return Article(
        outlet=outlet.id,
        slug=raw["slug"],
        id=int(raw["id"]),
        title=raw["title"],
        author=raw["author"],
        byline=raw["byline"],
        published=published,
        body=tuple(raw["body"]),
        figures=tuple(Figure(after=c["after"], caption=c["text"], echo=c.get("echo")) for c in raw.get("captions", ())),
        path=path,
        url=path,
        author_box=AuthorBox(**box) if box else None,
        credit=raw.get("credit"),
        contact=raw.get("contact"),
        related=raw.get("related"),
        syndicates=raw.get("syndicates"),
        edits=tuple(Edit(**e) for e in raw.get("edits", ())),
    )


@cache
def _load(path: Path) -> Site:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    outlets = {oid: _outlet(oid, o) for oid, o in raw["outlets"].items()}
    articles = tuple(_article(a, outlets) for a in raw["articles"])
    slugs = [a.slug for a in articles]
    if len(set(slugs)) != len(slugs):
        raise ValueError("article slugs must be unique across the site")
    shared = tuple(SharedSentence(text=s["text"], articles=tuple(s["articles"])) for s in raw.get("shared_sentences", ()))
    return Site(outlets=outlets, articles=articles, shared_sentences=shared)


def load_site(base: str = "", path: Path = CONTENT_FILE) -> Site:
    """The whole site; article ``url``s are ``base`` + path (just the path when ``base`` is empty)."""
    site = _load(path)
    if not base:
        return site
    base = base.rstrip("/")
    return replace(site, articles=tuple(replace(a, url=base + a.path) for a in site.articles))


def load_articles(base: str = "") -> list[Article]:
    """Every article on the site, in content order."""
    return list(load_site(base).articles)


def shared_sentences() -> list[SharedSentence]:
    return list(load_site().shared_sentences)
