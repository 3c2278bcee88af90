"""서울일보: a Korean outlet on a typical Korean press CMS (``articleView.html?idxno=``).

It exercises CJK text, a ``lang="ko"`` page and the boilerplate Korean sites
carry: reporter line, 입력 date, 광고, the copyright notice and 많이 본 뉴스.
"""

from __future__ import annotations

from ingest.sample_site.content import Article, Site
from ingest.sample_site.markup import e, head, others, summary

NAV = ("정치", "경제", "사회", "국제", "문화", "스포츠")


def reporter(article: Article) -> str:
    return f"{article.author} 기자"


def input_line(article: Article) -> str:
    dt = article.published
    return f"입력 {dt:%Y.%m.%d %H:%M}"


def boilerplate(site: Site, article: Article) -> list[str]:
    chrome = site.outlets[article.outlet].chrome
    strings = [
        reporter(article),
        input_line(article),
        chrome["share"],
        *article.captions,
        chrome["ad_marker"],
        article.byline,
        chrome["copyright"],
        chrome["most_read"],
        *(a.title for a in others(site, article)),
        *chrome["footer"],
    ]
    return list(dict.fromkeys(strings))


def page(site: Site, article: Article, base: str) -> str:
    outlet = site.outlets[article.outlet]
    chrome = outlet.chrome
    body: list[str] = []
    for i, para in enumerate(article.body):
        body.append(f"<p>{e(para)}</p>")
        for fig in (f for f in article.figures if f.after == i):
            body.append(
                f'<figure class="photo-layout image photo-layout-center"><div class="IMGFLOATING">'
                f'<img src="/seoul-ilbo/news/photo/{article.published:%Y%m}/{article.id}_{i}.jpg" alt="{e(fig.caption)}"></div>'
                f"<figcaption>{e(fig.caption)}</figcaption></figure>"
            )
        if i == 1:
            body.append(f'<div class="article-ad"><p>{e(chrome["ad_marker"])}</p><div id="AD_inline"></div></div>')
    body.append(f"<p>{e(article.byline)}</p>")
    nav = "".join(f'<li><a href="/seoul-ilbo/news/articleList.html?sc_section_code={i}">{e(n)}</a></li>' for i, n in enumerate(NAV))
    most_read = "".join(f'<li><a href="{e(a.path)}">{e(a.title)}</a></li>' for a in others(site, article))
    return head(outlet, base, title=f"{article.title} - {outlet.name}", article=article,
                description=summary(article)) + f"""<body>
<div id="user-wrap">
<header id="user-header"><h1 class="logo"><a href="{e(outlet.home)}"><img src="/seoul-ilbo/image/logo.png" alt="{e(outlet.name)}"></a></h1><nav><ul class="nav-menu">{nav}</ul></nav></header>
<div id="user-container">
<section class="article-head">
<h3 class="heading">{e(article.title)}</h3>
<ul class="infomation"><li><i class="icon-user"></i> {e(reporter(article))}</li><li><i class="icon-clock"></i> {e(input_line(article))}</li></ul>
<div class="share-box"><span>{e(chrome['share'])}</span><a href="#" class="kakao">카카오톡</a><a href="#" class="facebook">페이스북</a></div>
</section>
<article id="article-view-content-div" class="article-veiw-body view-page" itemprop="articleBody">
{chr(10).join(body)}
</article>
<div class="view-copyright">{e(chrome['copyright'])}</div>
<aside class="side-box"><h2 class="auto-titles">{e(chrome['most_read'])}</h2><ul class="auto-article">{most_read}</ul></aside>
</div>
<footer id="user-footer"><p>{e(chrome['footer'][0])}</p></footer>
</div>
</body>
</html>
"""
