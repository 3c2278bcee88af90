"""HTML pages and RSS feeds of the load site.

Pages wrap a real story in one of a few site templates carrying the boilerplate
real news pages carry (mega-menu, ticker, byline, photo and caption, ad slots,
share bar, related links, newsletter prompt, a tagline repeated under every
article, footer, scripts and styles), so extraction costs what it costs on the
web and deduplication meets template text and syndicated copies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import format_datetime
from html import escape

from ingest.load_site.model import SECTIONS, Host, LoadModel, Page

ROBOTS_TXT = b"User-agent: *\nAllow: /\n"
_STYLE = "".join(f".c{i}{{margin:{i}px;padding:{i % 7}px;color:#{i * 7919 % 0xFFFFFF:06x}}}" for i in range(120))
_SCRIPT = ";".join(f"var m{i}=function(e,t){{return(e<<{i % 13})^t.charCodeAt({i % 7})|0x{i * 2654435761 % 0xFFFFFF:06x}}}" for i in range(500))
_ICON = '<svg viewBox="0 0 24 24" width="16" height="16"><path d="M12 2L2 7l10 5 10-5-10-5zm0 7.5L4.5 6 12 2.5 19.5 6 12 9.5z"/></svg>'
_COMMENTS = ("Great reporting, thanks for keeping us informed.", "I don't buy it. Where are the numbers from?",
             "This is exactly what I have been saying for years.", "Can someone explain what this means for ordinary people?",
             "Shared with my family. Everyone should read this.", "The headline is misleading, read the whole thing.")
_AUTHORS = ("Maria Lopez", "James Okafor", "Anna Schmidt", "Kenji Watanabe", "Priya Natarajan", "Tom Becker", "Lena Novak")


@dataclass(frozen=True, slots=True)
class Template:
    """What differs between the CMSs the hosts run: containers, class names, byline style."""

    name: str
    article_open: str
    article_close: str
    body_class: str
    byline: str  # format with author, site
    ad_class: str
    caption: str  # format with caption; a photo caption the way this CMS marks it up


TEMPLATES = (
    Template("wordpress", '<article class="post type-post hentry">', "</article>", "entry-content",
             '<p><strong>By {author}, {site} staff</strong></p>', "adsbygoogle",
             '<figure class="wp-caption"><img src="/img/lead.jpg" alt=""><figcaption class="wp-caption-text">{caption}</figcaption></figure>'),
    Template("plain-cms", '<div id="story" class="story">', "</div>", "story-body",
             '<div class="byline">By <a href="/authors/x" rel="author">{author}</a> | {site}</div>', "ad-slot",
             '<div class="photo"><img src="/img/lead.jpg" alt=""><p class="photo-caption">{caption}</p></div>'),
    Template("wire", '<main><div class="wire-story">', "</div></main>", "article-text",
             '<p class="dateline-byline">{author} ({site})</p>', "advert",
             '<figure><img src="/img/lead.jpg" alt=""><figcaption>{caption}</figcaption></figure><p><em>{caption}</em></p>'),
    Template("magazine", '<section class="longform"><article>', "</article></section>", "longform-body",
             '<address class="author">Words by {author}</address>', "sponsored-unit",
             '<picture class="hero"><img src="/img/lead.jpg" alt="{caption}"></picture><small class="credit">{caption} Photo: {site}</small>'),
)


def template_of(host: Host) -> Template:
    return TEMPLATES[host.index % len(TEMPLATES)]


def body_of(model: LoadModel, page: Page) -> list[str]:
    """The story's paragraphs as this page prints them: a syndicated copy is lightly edited."""
    paragraphs = list(page.story.paragraphs)
    if page.copy_of is None:
        return paragraphs
    source = model.hosts[model.pages[-1 - page.copy_of].host]
    if len(paragraphs) > 4:
        paragraphs.pop()  # the copy desk trims the tail
    paragraphs[0] = f"({source.name.upper()}) - {paragraphs[0]}"
    paragraphs[-1] = paragraphs[-1].replace(" said ", " told reporters ", 1)
    return [*paragraphs, f"This story was first published by {source.name} and is republished with permission."]


def _links(hrefs: list[tuple[str, str]], css: str) -> str:
    return f'<ul class="{css}">' + "".join(f'<li><a href="{escape(h)}">{escape(t)}</a></li>' for h, t in hrefs) + "</ul>"


def _nav(host: Host) -> str:
    menu = [(f"/{s}/", s.title()) for s in SECTIONS] + [(f"/{s}/{k}/", f"{s.title()} {k}") for s in SECTIONS[:8] for k in ("latest", "analysis", "video")]
    return f'<header class="site-header"><a class="logo" href="/">{host.name}</a><nav class="menu">{_links(menu, "mega-menu")}</nav></header>'


def _teasers(base_url: str, pages: list[Page]) -> str:
    """A 'more from this site' grid of cards, nested the way CMS card components are."""
    cards = "".join(
        f'<div class="card"><a class="card-link" href="{escape(base_url + p.path)}"><div class="card-media"><picture>'
        f'<source srcset="/img/{p.id}.webp" type="image/webp"><img src="/img/{p.id}.jpg" alt="" loading="lazy"></picture></div>'
        f'<div class="card-text"><span class="kicker">{SECTIONS[p.feed % len(SECTIONS)].title()}</span><h3>{escape(p.story.title)}</h3>'
        f'<p class="standfirst">{escape(p.story.paragraphs[0][:140])}</p><span class="meta">{p.published:%d %b %H:%M}</span></div></a></div>'
        for p in pages)
    return f'<section class="more-from"><h2>More stories</h2><div class="grid">{cards}</div></section>'


def _comments(page: Page) -> str:
    items = "".join(f'<li class="comment"><div class="comment-author">{_AUTHORS[(page.id + i) % len(_AUTHORS)].split()[0].lower()}{i}</div>'
                    f'<div class="comment-body"><p>{text}</p></div><button>Reply</button> <button>Like</button></li>'
                    for i, text in enumerate(_COMMENTS[: 2 + page.id % 5]))
    return f'<section id="comments" class="comments"><h2>Comments</h2><ol>{items}</ol></section>'


def render_page(model: LoadModel, page: Page, base_url: str) -> bytes:
    """One article page; links are absolute on ``base_url`` (the host's own address and port)."""
    host = model.hosts[page.host]
    template = template_of(host)
    author = _AUTHORS[(page.id * 31 + host.index) % len(_AUTHORS)]
    body = body_of(model, page)
    caption = f"{page.story.title}: a file photo from the archive of {host.name}."
    nearby = model.nearby(page, 29)
    related = _links([(base_url + p.path, p.story.title) for p in nearby[:5]], "related-links")
    ld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle", "headline": page.story.title,
                     "datePublished": page.published.isoformat(), "author": {"@type": "Person", "name": author},
                     "publisher": {"@type": "Organization", "name": host.name}})
    ad = f'<div class="{template.ad_class}"><span>Advertisement</span><ins data-slot="{page.id}"></ins></div>'
    middle = len(body) // 2
    paragraphs = [f"<p>{escape(p)}</p>" for p in body]
    paragraphs.insert(middle, ad)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(page.story.title)} | {host.name}</title>",
        f'<link rel="canonical" href="{base_url}{page.path}"><meta property="og:site_name" content="{host.name}">',
        f'<meta property="og:title" content="{escape(page.story.title)}">',
        f'<meta property="article:published_time" content="{page.published.isoformat()}">',
        f'<script type="application/ld+json">{ld}</script><style>{_STYLE}</style>',
        '<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}gtag("js",new Date());</script>',
        f"</head><body>{_nav(host)}",
        f'<div class="ticker">Breaking: markets open higher | Weather: 14°C, showers | Subscribe to {host.name} for $1</div>',
        template.article_open, f"<h1>{escape(page.story.title)}</h1>",
        template.byline.format(author=author, site=host.name),
        f'<time datetime="{page.published.isoformat()}">{page.published:%d %B %Y %H:%M} UTC</time>',
        template.caption.format(caption=escape(caption), site=host.name),
        f'<div class="share-bar"><a href="#">{_ICON}Share on Facebook</a><a href="#">{_ICON}Share on X</a><a href="#">{_ICON}Email this story</a></div>',
        f'<div class="{template.body_class}">', *paragraphs,
        f"<p>{host.name} covers the news that matters to you, every day.</p></div>",
        f'<aside class="related"><h2>Related stories</h2>{related}</aside>',
        f'<div class="newsletter">Get the {host.name} morning briefing in your inbox. <a href="/newsletter">Sign up now</a></div>',
        _comments(page), template.article_close, ad, _teasers(base_url, nearby[5:]),
        '<div class="cookie-banner">We use cookies to improve your experience. <button>Accept all</button> <a href="/about/cookies">Settings</a></div>',
        f'<footer class="site-footer">{_links([(f"/about/{k}", k.title()) for k in ("about", "contact", "careers", "privacy", "terms", "cookies", "advertise", "archive")], "footer-links")}',
        f"<p>© 2026 {host.name} Media Group. All rights reserved.</p></footer>",
        f'<script>{_SCRIPT}</script><script src="/static/app.js" async></script></body></html>',
    ]
    return "\n".join(parts).encode("utf-8")


def render_feed(host: Host, feed: int, pages: list[Page], base_url: str) -> bytes:
    """RSS 2.0 for one of a host's feeds, listing ``pages`` (newest first)."""
    items = []
    for page in pages:
        link = escape(base_url + page.path)
        items.append(f"<item><title>{escape(page.story.title)}</title><link>{link}</link><guid isPermaLink=\"true\">{link}</guid>"
                     f"<pubDate>{format_datetime(page.published, usegmt=True)}</pubDate>"
                     f"<description>{escape(page.story.paragraphs[0][:300])}</description></item>")
    channel = f"<title>{host.name}: {SECTIONS[feed % len(SECTIONS)]}</title><link>{base_url}/</link><description>{host.name} news</description>"
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>' + channel + "".join(items) + "</channel></rss>").encode("utf-8")
