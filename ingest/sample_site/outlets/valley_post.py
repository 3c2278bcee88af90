"""The Valley Post: a plain hand-rolled CMS.

Its boilerplate sits in ordinary ``<p>`` tags between the story paragraphs with
no class that gives it away (ad marker, share prompt, "Related:", newsletter
prompt, byline, photo credits), which is what makes it hard to strip.
"""

from __future__ import annotations

from ingest.sample_site.content import Article, Site
from ingest.sample_site.markup import clock_12h, e, head, long_date, others, summary

NAV = ("News", "Schools", "Farm & Ranch", "Sports", "Obituaries", "Subscribe")


def published_line(article: Article) -> str:
    return f"Published {long_date(article.published)} at {clock_12h(article.published, dotted=True)}"


def related_line(site: Site, article: Article) -> str | None:
    return f"Related: {site.article(article.related).title}" if article.related else None


def boilerplate(site: Site, article: Article) -> list[str]:
    chrome = site.outlets[article.outlet].chrome
    strings = [
        chrome["cookie"],
        article.byline,
        published_line(article),
        chrome["share"],
        *article.captions,
        chrome["ad_marker"],
        related_line(site, article),
        chrome["newsletter"],
        chrome["syndication_note"] if article.syndicates else None,
        chrome["standing_note"],
        chrome["most_read"],
        *(a.title for a in others(site, article)),
        *chrome["footer"],
    ]
    return list(dict.fromkeys(s for s in strings if s))


def _story(site: Site, article: Article) -> str:
    """Body paragraphs with the plain-``<p>`` boilerplate slotted in between."""
    chrome = site.outlets[article.outlet].chrome
    n = len(article.body)
    slots: dict[int, list[str]] = {}

    def put(after: int, html_: str) -> None:
        slots.setdefault(min(after, n - 1), []).append(html_)

    for fig in article.figures:
        src = f"/valley-post/media/{article.id}-{fig.after}.jpg"
        put(fig.after, f'<img src="{src}" alt="" width="800" height="533">\n<p>{e(fig.caption)}</p>')
    put(1, f"<p>{e(chrome['ad_marker'])}</p>")
    related = related_line(site, article)
    if related and article.related:
        put(2, f'<p><a href="{e(site.article(article.related).path)}">{e(related)}</a></p>')
    put(n // 2 + 1, f"<p>{e(chrome['newsletter'])} <a href=\"/valley-post/newsletters\">Sign up</a></p>")
    out: list[str] = []
    for i, para in enumerate(article.body):
        out.append(f"<p>{e(para)}</p>")
        out += slots.get(i, [])
    if article.syndicates:
        out.append(f"<p><em>{e(chrome['syndication_note'])}</em></p>")
    out.append(f"<p>{e(chrome['standing_note'])}</p>")
    return "\n".join(out)


def page(site: Site, article: Article, base: str) -> str:
    outlet = site.outlets[article.outlet]
    chrome = outlet.chrome
    nav = " | ".join(f'<a href="/valley-post/{n.lower().replace(" & ", "-")}">{e(n)}</a>' for n in NAV)
    most_read = "\n".join(f'<li><a href="{e(a.path)}">{e(a.title)}</a></li>' for a in others(site, article))
    footer = "\n".join(f"<p>{e(line)}</p>" for line in chrome["footer"])
    extra = '<link rel="stylesheet" href="/valley-post/static/site.css">'
    return head(outlet, base, title=f"{article.title} | {outlet.name}", article=article,
                description=summary(article), extra=extra) + f"""<body>
<div id="consent">
<p>{e(chrome['cookie'])}</p>
<button type="button">OK</button>
</div>
<div id="top">
<a href="{e(outlet.home)}"><img src="/valley-post/static/logo.svg" alt="{e(outlet.name)}"></a>
<div id="menu">{nav}</div>
</div>
<div id="wrap">
<div id="main">
<h1>{e(article.title)}</h1>
<p>{e(article.byline)}</p>
<p>{e(published_line(article))}</p>
<p>{e(chrome['share'])}: <a href="#">Facebook</a> <a href="#">X</a> <a href="#">Email</a></p>
{_story(site, article)}
</div>
<div id="side">
<h3>{e(chrome['most_read'])}</h3>
<ol>
{most_read}
</ol>
</div>
</div>
<div id="bottom">
{footer}
</div>
</body>
</html>
"""
