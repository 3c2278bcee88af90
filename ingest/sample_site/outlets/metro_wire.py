"""Metro Wire: a wire-service site with semantic markup and ``data-testid`` attributes.

Wire copy ends with a reporting credit in parentheses and the reporter's
e-mail in brackets, both inside the article body container.
"""

from __future__ import annotations

from ingest.sample_site.content import Article, Site
from ingest.sample_site.markup import clock_12h, e, gmt_offset, head, json_ld, long_date, read_minutes, summary

NAV = ("World", "Business", "Markets", "Technology", "Asia Pacific")


def date_line(article: Article) -> str:
    dt = article.published
    return f"{long_date(dt)} {clock_12h(dt, dotted=False)} {gmt_offset(dt)}"


def boilerplate(site: Site, article: Article) -> list[str]:
    chrome = site.outlets[article.outlet].chrome
    strings = [
        article.byline,
        date_line(article),
        f"{read_minutes(article)} min read",
        *article.captions,
        article.credit,
        article.contact,
        chrome["standards"],
        *chrome["footer"],
    ]
    return list(dict.fromkeys(s for s in strings if s))


def page(site: Site, article: Article, base: str) -> str:
    outlet = site.outlets[article.outlet]
    chrome = outlet.chrome
    paras: list[str] = []
    for i, para in enumerate(article.body):
        paras.append(f'<p data-testid="paragraph-{i}">{e(para)}</p>')
        for fig in (f for f in article.figures if f.after == i):
            paras.append(
                f'<figure data-testid="primary-image"><img src="/metro-wire/resizer/{article.id}-{i}.jpg" alt="">'
                f"<figcaption><span>{e(fig.caption)}</span></figcaption></figure>"
            )
    if article.credit:
        paras.append(f'<p data-testid="paragraph-{len(article.body)}">{e(article.credit)}</p>')
    if article.contact:
        paras.append(f"<p>{e(article.contact)}</p>")
    nav = "".join(f'<li><a href="/metro-wire/{n.lower().replace(" ", "-")}/">{e(n)}</a></li>' for n in NAV)
    ld = json_ld({
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "datePublished": article.published.isoformat(),
        "author": [{"@type": "Person", "name": article.author}],
        "publisher": {"@type": "Organization", "name": outlet.name},
    })
    return head(outlet, base, title=f"{article.title} | {outlet.name}", article=article,
                description=summary(article), extra=ld) + f"""<body>
<header class="site-header"><a class="logo" href="{e(outlet.home)}">{e(outlet.name)}</a><nav aria-label="Main"><ul>{nav}</ul></nav></header>
<main id="main-content">
<article class="article">
<header class="article-header">
<h1 data-testid="Heading">{e(article.title)}</h1>
<div class="article-info">
<address class="byline"><a rel="author" href="/metro-wire/authors/">{e(article.byline)}</a></address>
<time datetime="{article.published.isoformat()}">{e(date_line(article))}</time>
<span class="read-time">{read_minutes(article)} min read</span>
</div>
</header>
<div class="article-body" data-testid="ArticleBody">
{chr(10).join(paras)}
</div>
<div class="trust-badge"><a href="/metro-wire/trust-principles">{e(chrome['standards'])}</a></div>
</article>
</main>
<footer class="site-footer"><p>{e(chrome['footer'][0])}</p></footer>
</body>
</html>
"""
