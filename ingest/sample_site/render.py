"""Renders every page and feed of the sample site for one base URL.

The base is known only once the server has its port, so the server renders
the whole site once at start-up and then serves bytes from memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ingest.sample_site.content import Article, Outlet, Site, load_site
from ingest.sample_site.feeds import feed_items, last_modified, render_feed, render_sitemap, render_sitemap_index, sitemap_path
from ingest.sample_site.markup import e, head, long_date
from ingest.sample_site.outlets import TEMPLATES

ROBOTS_TXT = "User-agent: *\nDisallow: /admin/\nAllow: /\n"

CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
}


@dataclass(frozen=True)
class Resource:
    body: bytes
    content_type: str
    last_modified: datetime


def boilerplate(article: Article) -> list[str]:
    """Every boilerplate string on ``article``'s page; none of it may reach storage.

    Captions, bylines, ad markers, author boxes, share/related/newsletter/cookie
    lines, weather widget, credit lines, other headlines and footer sentences.
    Single generic menu words ("Home", "Facebook") are left out: they would
    match inside real text.
    """
    site = load_site()
    return TEMPLATES[article.outlet].boilerplate(site, site.article(article.slug))


def article_page(article: Article, base: str) -> str:
    site = load_site()
    return TEMPLATES[article.outlet].page(site, site.article(article.slug), base.rstrip("/"))


def _outlet_home(site: Site, outlet: Outlet, base: str) -> str:
    items = "\n".join(
        f'<li><a href="{e(a.path)}">{e(a.title)}</a> <time datetime="{a.published.isoformat()}">{e(long_date(a.published))}</time></li>'
        for a in sorted(site.of_outlet(outlet.id), key=lambda a: a.published, reverse=True)
    )
    return head(outlet, base, title=outlet.name, description=outlet.description) + f"""<body>
<header><h1>{e(outlet.name)}</h1><p>{e(outlet.description)}</p></header>
<main><ul>
{items}
</ul></main>
<footer><a href="{e(outlet.feed.path)}">Feed</a></footer>
</body>
</html>
"""


def _index(site: Site) -> str:
    blocks = []
    for outlet in site.outlets.values():
        links = "".join(f'<li><a href="{e(a.path)}">{e(a.title)}</a></li>' for a in site.of_outlet(outlet.id))
        blocks.append(
            f'<section lang="{e(outlet.lang)}"><h2><a href="{e(outlet.home)}">{e(outlet.name)}</a></h2>'
            f'<p><a href="{e(outlet.feed.path)}">{e(outlet.feed.path)}</a> ({outlet.feed.format})</p><ul>{links}</ul></section>'
        )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sample news site</title></head>
<body>
<h1>Sample news site</h1>
<p>Fictional outlets served on loopback for the news-ingest demo and tests.</p>
{chr(10).join(blocks)}
</body>
</html>
"""


def render_site(base: str) -> dict[str, Resource]:
    """Every resource keyed by its path (with query, for query-addressed pages)."""
    base = base.rstrip("/")
    site = load_site()
    newest = max(a.published for a in site.articles)
    out: dict[str, Resource] = {
        "/": Resource(_index(site).encode(), CONTENT_TYPES["html"], newest),
        "/robots.txt": Resource(ROBOTS_TXT.encode(), CONTENT_TYPES["text"], newest),
        "/sitemap_index.xml": Resource(render_sitemap_index(site, base).encode(), CONTENT_TYPES["xml"], newest),
    }
    for outlet in site.outlets.values():
        items = feed_items(site, outlet, base)
        out[outlet.feed.path] = Resource(
            render_feed(site, outlet, base).encode(), CONTENT_TYPES[outlet.feed.format], last_modified(items)
        )
        own = site.of_outlet(outlet.id)
        out[sitemap_path(outlet)] = Resource(render_sitemap(site, outlet, base).encode(), CONTENT_TYPES["xml"], max(a.published for a in own))
        out[outlet.home] = Resource(
            _outlet_home(site, outlet, base).encode(), CONTENT_TYPES["html"], max(a.published for a in own)
        )
        for art in own:
            out[art.path] = Resource(
                TEMPLATES[outlet.id].page(site, art, base).encode(), CONTENT_TYPES["html"], art.published
            )
    return out
