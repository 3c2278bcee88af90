"""Feeds (RSS 2.0, with or without ``<guid>``, and Atom 1.0) and news sitemaps.

``feed_items`` is also ground truth: it says which links a feed hands out,
tracking parameters included, and which article each one reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from ingest.sample_site.content import Article, Outlet, Site
from ingest.sample_site.markup import e, summary


@dataclass(frozen=True)
class FeedItem:
    title: str
    link: str
    guid: str | None
    published: datetime
    author: str
    summary: str
    article: Article
    partner: bool = False


def _with_query(url: str, query: str) -> str:
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + query


def feed_items(site: Site, outlet: Outlet, base: str) -> list[FeedItem]:
    """The outlet's items, newest first, as its feed lists them."""
    items: list[FeedItem] = []
    for art in site.of_outlet(outlet.id):
        link = _with_query(base + art.path, outlet.feed.link_query)
        guid = None
        if outlet.feed.guids:
            guid = outlet.guid.format(id=art.id, slug=art.slug) if outlet.guid else base + art.path
        items.append(FeedItem(art.title, link, guid, art.published, art.author, summary(art), art))
    for partner in outlet.partner_items:
        art = site.article(partner.slug)
        items.append(FeedItem(
            art.title, _with_query(base + art.path, partner.query), None, art.published,
            art.author, summary(art), art, partner=True,
        ))
    return sorted(items, key=lambda i: i.published, reverse=True)


def last_modified(items: list[FeedItem]) -> datetime:
    return max(i.published for i in items)


def _rss(outlet: Outlet, base: str, items: list[FeedItem]) -> str:
    entries = []
    for item in items:
        guid = f'\n<guid isPermaLink="false">{e(item.guid)}</guid>' if item.guid and item.guid != item.link else (
            f"\n<guid>{e(item.guid)}</guid>" if item.guid else "")
        entries.append(f"""<item>
<title>{e(item.title)}</title>
<link>{e(item.link)}</link>
<dc:creator>{e(item.author)}</dc:creator>
<pubDate>{format_datetime(item.published)}</pubDate>{guid}
<description>{e(item.summary)}</description>
</item>""")
    newest = format_datetime(last_modified(items))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>{e(outlet.name)}</title>
<atom:link href="{e(base + outlet.feed.path)}" rel="self" type="application/rss+xml"/>
<link>{e(base + outlet.home)}</link>
<description>{e(outlet.description)}</description>
<language>{e(outlet.lang)}</language>
<lastBuildDate>{newest}</lastBuildDate>
{chr(10).join(entries)}
</channel>
</rss>
"""


def _atom(outlet: Outlet, base: str, items: list[FeedItem]) -> str:
    entries = []
    for item in items:
        entries.append(f"""<entry>
<title>{e(item.title)}</title>
<link rel="alternate" type="text/html" href="{e(item.link)}"/>
<id>{e(item.guid or item.link)}</id>
<published>{item.published.isoformat()}</published>
<updated>{item.published.isoformat()}</updated>
<author><name>{e(item.author)}</name></author>
<summary type="text">{e(item.summary)}</summary>
</entry>""")
    feed_id = outlet.guid.format(id="feed", slug="feed") if outlet.guid else base + outlet.feed.path
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{e(outlet.lang)}">
<title>{e(outlet.name)}</title>
<subtitle>{e(outlet.description)}</subtitle>
<link rel="self" type="application/atom+xml" href="{e(base + outlet.feed.path)}"/>
<link rel="alternate" type="text/html" href="{e(base + outlet.home)}"/>
<id>{e(feed_id)}</id>
<updated>{last_modified(items).isoformat()}</updated>
{chr(10).join(entries)}
</feed>
"""


def render_feed(site: Site, outlet: Outlet, base: str) -> str:
    items = feed_items(site, outlet, base)
    return _atom(outlet, base, items) if outlet.feed.format == "atom" else _rss(outlet, base, items)


def sitemap_path(outlet: Outlet) -> str:
    return f"{outlet.home}news-sitemap.xml"


def render_sitemap(site: Site, outlet: Outlet, base: str) -> str:
    """A Google news sitemap of the outlet's own articles: canonical links, publication dates."""
    urls = "\n".join(
        f"""<url><loc>{e(base + art.path)}</loc><lastmod>{art.published.isoformat()}</lastmod>
<news:news><news:publication><news:name>{e(outlet.name)}</news:name><news:language>{e(outlet.lang.split("-")[0])}</news:language></news:publication>
<news:publication_date>{art.published.isoformat()}</news:publication_date><news:title>{e(art.title)}</news:title></news:news></url>"""
        for art in sorted(site.of_outlet(outlet.id), key=lambda a: a.published, reverse=True)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
{urls}
</urlset>
"""


def render_sitemap_index(site: Site, base: str) -> str:
    """The site-wide index naming every outlet's news sitemap."""
    maps = "\n".join(
        f"<sitemap><loc>{e(base + sitemap_path(o))}</loc><lastmod>{max(a.published for a in site.of_outlet(o.id)).isoformat()}</lastmod></sitemap>"
        for o in site.outlets.values()
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{maps}
</sitemapindex>
"""
