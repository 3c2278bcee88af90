"""Harbor Daily: a WordPress site on the tagDiv "Newspaper" theme (``td-`` classes).

Like the seed page it has a header weather widget, figures whose caption is
repeated as a body ``<p>`` (straight vs curly apostrophes), bare
``- Advertisement -`` paragraphs, a bold ``BY NAME [email]`` byline paragraph
and an author box, all inside or next to the post content.
"""

from __future__ import annotations

from ingest.sample_site.content import Article, Site
from ingest.sample_site.markup import e, head, json_ld, long_date, others, summary, weekday_date

NAV = ("Home", "News", "Local", "Business", "Sports", "Opinion", "Obituaries")
RELATED_LABELS = ("RELATED ARTICLES", "MORE FROM AUTHOR")


def _ad_after(article: Article) -> int:
    """Body index after which the inline ad sits: about a third of the way down."""
    return max(1, len(article.body) // 3)


def boilerplate(site: Site, article: Article) -> list[str]:
    chrome = site.outlets[article.outlet].chrome
    strings = [
        chrome["weather_temperature"],
        chrome["weather_city"],
        weekday_date(article.published),
        long_date(article.published),
        *article.captions,
        chrome["ad_marker"],
        article.byline,
    ]
    if article.author_box:
        strings += [article.author_box.name, article.author_box.bio]
    strings += ["Previous article", "Next article", *RELATED_LABELS]
    strings += [a.title for a in others(site, article)]
    strings += chrome["footer"]
    return list(dict.fromkeys(strings))


def _figure(article: Article, index: int) -> list[str]:
    out = []
    for n, fig in enumerate(f for f in article.figures if f.after == index):
        src = f"/harbor-daily/wp-content/uploads/{article.published:%Y/%m}/photo-{article.id}-{index}-{n}.jpg"
        out.append(
            f'<figure class="wp-block-image size-large"><img decoding="async" width="696" height="464" '
            f'src="{src}" alt="" class="wp-image-{article.id}{index}"/>'
            f'<figcaption class="wp-element-caption">{e(fig.caption)}</figcaption></figure>'
        )
        if fig.echo:
            out.append(f"<p>{e(fig.echo)}</p>")
    return out


def _content(site: Site, article: Article) -> str:
    chrome = site.outlets[article.outlet].chrome
    parts: list[str] = []
    for i, para in enumerate(article.body):
        parts.append(f"<p>{e(para)}</p>")
        parts += _figure(article, i)
        if i == _ad_after(article):
            parts.append(f"<p>{e(chrome['ad_marker'])}</p>")
    parts.append(f"<p><strong>{e(article.byline)}</strong></p>")
    return "\n".join(parts)


def _author_box(article: Article) -> str:
    box = article.author_box
    if box is None:
        return ""
    slug = box.name.lower().replace(" ", "-")
    return f"""<div class="td-author-box">
<div class="td-block-title-wrap"><h4 class="td-block-title"><span>{e(box.name)}</span></h4></div>
<div class="author-box-wrap">
<a href="/harbor-daily/author/{slug}/"><img alt="" src="/harbor-daily/wp-content/uploads/avatars/{slug}.jpg" class="avatar avatar-96" height="96" width="96"></a>
<div class="desc">
<div class="td-author-name vcard author"><span class="fn"><a href="/harbor-daily/author/{slug}/">{e(box.name)}</a></span></div>
<div class="td-author-description">{e(box.bio)}</div>
<div class="td-author-social"><span class="td-social-icon-wrap"><a href="https://facebook.example/harbordaily" title="Facebook"><i class="td-icon-font td-icon-facebook"></i></a></span></div>
<div class="clearfix"></div>
</div>
</div>
</div>"""


def _related(site: Site, article: Article) -> str:
    items = "\n".join(
        f'<div class="td_module_related_posts td-animation-stack td_mod_related_posts">'
        f'<div class="item-details"><h3 class="entry-title td-module-title">'
        f'<a href="{e(a.path)}" rel="bookmark" title="{e(a.title)}">{e(a.title)}</a></h3></div></div>'
        for a in others(site, article)
    )
    tabs = "".join(f'<li><a class="td-related-title" href="#">{label}</a></li>' for label in RELATED_LABELS)
    return f"""<div class="td_block_wrap td_block_related_posts tdi_3 td_with_ajax_pagination td-pb-border-top td_block_template_1">
<h4 class="td-related-title td-block-title"><ul class="td-related-tabs">{tabs}</ul></h4>
<div class="td_block_inner">
{items}
</div>
</div>"""


def _prev_next(site: Site, article: Article) -> str:
    outlet_articles = sorted(site.of_outlet(article.outlet), key=lambda a: a.published)
    i = outlet_articles.index(next(a for a in outlet_articles if a.slug == article.slug))
    prev_a = outlet_articles[i - 1] if i > 0 else outlet_articles[-1]
    next_a = outlet_articles[(i + 1) % len(outlet_articles)]
    return f"""<div class="td-block-row td-post-next-prev">
<div class="td-block-span6 td-post-prev-post"><div class="td-post-next-prev-content"><span>Previous article</span><a href="{e(prev_a.path)}">{e(prev_a.title)}</a></div></div>
<div class="td-next-prev-separator"></div>
<div class="td-block-span6 td-post-next-post"><div class="td-post-next-prev-content"><span>Next article</span><a href="{e(next_a.path)}">{e(next_a.title)}</a></div></div>
</div>"""


def page(site: Site, article: Article, base: str) -> str:
    outlet = site.outlets[article.outlet]
    chrome = outlet.chrome
    box_name = article.author_box.name if article.author_box else article.author
    ld = json_ld({
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "datePublished": article.published.isoformat(),
        "author": {"@type": "Person", "name": box_name},
        "publisher": {"@type": "Organization", "name": outlet.name},
        "mainEntityOfPage": base + article.path,
    })
    extra = f"""<link rel="stylesheet" id="td-theme-css" href="/harbor-daily/wp-content/themes/Newspaper/style.css?ver=12.6.5" type="text/css" media="all">
{ld}
<script>var tdBlocksArray = []; var tdLocalCache = {{}}; var td_ajax_url = "/harbor-daily/wp-admin/admin-ajax.php?td_theme_name=Newspaper&v=12.6.5";</script>"""
    nav = "".join(f'<li class="menu-item"><a href="/harbor-daily/category/{n.lower()}/">{n}</a></li>' for n in NAV)
    return head(outlet, base, title=f"{article.title} - {outlet.name}", article=article,
                description=summary(article), extra=extra) + f"""<body class="post-template-default single single-post postid-{article.id} single-format-standard td-standard-pack global-block-template-1 td-full-layout" itemscope="itemscope" itemtype="https://schema.org/WebPage">
<div class="td-scroll-up"><i class="td-icon-menu-up"></i></div>
<div class="td-menu-background"></div>
<div id="td-outer-wrap" class="td-theme-wrap">
<div class="td-header-wrap td-header-style-1">
<div class="td-header-top-menu-full td-container-wrap">
<div class="td-container td-header-row td-header-top-menu">
<div class="top-bar-style-1">
<div class="td-header-sp-top-menu">
<div class="td-weather-top-widget" id="td_top_weather_uid">
<i class="td-icons clear-sky-d"></i>
<div class="td-weather-now" data-block-uid="td_top_weather_uid"><span class="td-big-degrees">{e(chrome['weather_temperature'])}</span></div>
<div class="td-weather-header"><div class="td-weather-city">{e(chrome['weather_city'])}</div></div>
</div>
<div class="td_data_time"><div>{e(weekday_date(article.published))}</div></div>
</div>
</div>
</div>
</div>
<div class="td-banner-wrap-full td-logo-wrap-full td-container-wrap">
<div class="td-header-sp-logo"><a class="td-main-logo" href="{e(outlet.home)}"><img class="td-retina-data" src="/harbor-daily/wp-content/uploads/logo.png" alt="{e(outlet.name)}"><span class="td-visual-hidden">{e(outlet.name)}</span></a></div>
</div>
<div class="td-header-menu-wrap-full td-container-wrap">
<div class="td-header-menu-wrap td-header-gradient"><div id="td-header-menu" role="navigation"><ul id="menu-main" class="sf-menu">{nav}</ul></div></div>
</div>
</div>
<div class="td-main-content-wrap td-container-wrap">
<div class="td-container td-post-template-default">
<div class="td-crumb-container"><div class="entry-crumbs"><span><a title="" class="entry-crumb" href="{e(outlet.home)}">Home</a></span> <i class="td-icon-right td-bread-sep"></i> <span><a class="entry-crumb" href="/harbor-daily/category/news/">News</a></span></div></div>
<div class="td-pb-row">
<div class="td-pb-span8 td-main-content" role="main">
<div class="td-ss-main-content">
<article id="post-{article.id}" class="post-{article.id} post type-post status-publish format-standard has-post-thumbnail category-news">
<div class="td-post-header">
<ul class="td-category"><li class="entry-category"><a href="/harbor-daily/category/news/">News</a></li></ul>
<header class="td-post-title">
<h1 class="entry-title">{e(article.title)}</h1>
<div class="td-module-meta-info">
<div class="td-post-author-name"><div class="td-author-by">By</div> <a href="/harbor-daily/author/">{e(box_name)}</a><div class="td-author-line"> - </div></div>
<span class="td-post-date"><time class="entry-date updated td-module-date" datetime="{article.published.isoformat()}">{e(long_date(article.published))}</time></span>
</div>
</header>
</div>
<div class="td-post-sharing-top"><div class="td-post-sharing td-ps-bg td-ps-notext"><a class="td-social-sharing-button td-social-facebook" href="#"><div class="td-social-but-text">Facebook</div></a><a class="td-social-sharing-button td-social-twitter" href="#"><div class="td-social-but-text">Twitter</div></a><a class="td-social-sharing-button td-social-whatsapp" href="#"><div class="td-social-but-text">WhatsApp</div></a></div></div>
<div class="td-post-content tagdiv-type">
{_content(site, article)}
</div>
<footer>
<div class="td-a-rec td-a-rec-id-content_bottom"><span class="td-adspot-title">{e(chrome['ad_marker'])}</span><div class="td-ad-slot" data-slot="content_bottom"></div></div>
{_prev_next(site, article)}
{_author_box(article)}
</footer>
</article>
{_related(site, article)}
</div>
</div>
<div class="td-pb-span4 td-main-sidebar" role="complementary"><div class="td-ss-main-sidebar"><aside class="td_block_template_1 widget widget_search"><form method="get" action="/harbor-daily/"><input name="s" type="text" value=""><input type="submit" value="Search"></form></aside></div></div>
</div>
</div>
</div>
<div class="td-footer-wrapper td-container-wrap">
<div class="td-container"><div class="td-pb-row"><div class="td-pb-span12"><div class="footer-text-wrap">{e(chrome['footer'][0])}</div></div></div></div>
</div>
<div class="td-sub-footer-container td-container-wrap">
<div class="td-container"><div class="td-pb-row"><div class="td-pb-span td-sub-footer-copy">{e(chrome['footer'][1])}</div></div></div>
</div>
</div>
<script type="text/javascript" src="/harbor-daily/wp-content/themes/Newspaper/js/tagdiv_theme.min.js?ver=12.6.5" id="td-site-min-js"></script>
</body>
</html>
"""
