"""The bundled sample site: feeds, pages, HTTP caching, and its ground truth.

The integration tests trust ``load_articles()`` and ``boilerplate()``; these
tests check that the ground truth matches what the server really sends.
"""

from __future__ import annotations

import gzip
import html
import io
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import feedparser
import lxml.html
import pytest
import trafilatura
import yaml

from ingest.sample_site import SampleSite, boilerplate, load_articles, load_site, serve, shared_sentences
from ingest.sample_site.feeds import feed_items

ROOT = Path(__file__).resolve().parents[1]
SEED_SLUG = "marlow-county-to-send-1200-engineers-to-delta-reach"
SYNDICATED_SLUG = "county-sends-1200-engineers-to-delta-reach-levees"
CURLY = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


@pytest.fixture(scope="module")
def site() -> Iterator[SampleSite]:
    with serve() as running:
        yield running


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def strip_tracking(url: str) -> str:
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("utm_") and k != "fbclid"]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))


def norm(text: str) -> str:
    return " ".join(text.split())


def page_text(page: bytes) -> str:
    return norm(html.unescape(page.decode("utf-8")))


def shingles(text: str, k: int = 5) -> set[str]:
    t = norm(text.lower())
    return {t[i:i + k] for i in range(max(1, len(t) - k + 1))}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r'(?<=[.!?])\s+|(?<=[.!?]["”])\s+', text) if len(s.split()) >= 5]


# --------------------------------------------------------------------------- content


def test_content_shape() -> None:
    site = load_site()
    articles = load_articles()
    by_outlet = {o: site.of_outlet(o) for o in site.outlets}
    assert len(by_outlet["harbor-daily"]) == 3
    assert len(by_outlet["valley-post"]) == 3
    assert 2 <= len(by_outlet["metro-wire"]) <= 3
    for art in articles:
        assert art.published.tzinfo is not None, art.slug
        assert art.title and art.author and art.byline and art.captions
        assert art.url == art.path and art.path.startswith(f"/{art.outlet}/")
        for i, para in enumerate(art.body):
            assert 30 <= len(para.split()) <= 90, (art.slug, i, len(para.split()))
    assert all(a.url.startswith("http://h:1/") for a in load_articles("http://h:1"))


def test_seed_like_story_has_the_seeds_shape() -> None:
    art = load_site().article(SEED_SLUG)
    assert 8 <= len(art.body) <= 10
    assert art.byline.startswith("BY ") and re.search(r"\[[^@\]]+@[^\]]+\]$", art.byline)
    assert art.author_box and art.author_box.name and len(art.author_box.bio.split()) > 20
    caps = art.captions
    assert len(caps) == 3 and all(f.echo for f in art.figures)
    straight, curly, extra = caps
    assert "'" in straight and "’" not in straight and "’" in curly
    assert straight.translate(CURLY) == curly.translate(CURLY)
    assert extra.replace(", second from left,", "") == curly


def test_boilerplate_never_occurs_in_body() -> None:
    for art in load_articles():
        strings = boilerplate(art)
        assert strings and len(strings) == len(set(strings))
        for s in strings:
            for para in art.body:
                assert s not in para, (art.slug, s)
        assert all(cap in strings for cap in art.captions)
        assert art.byline in strings


def test_syndicated_copy_edits_match_the_texts() -> None:
    site = load_site()
    copies = [a for a in site.articles if a.syndicates]
    assert [a.slug for a in copies] == [SYNDICATED_SLUG]
    copy = copies[0]
    source = site.article(copy.syndicates)
    assert copy.outlet != source.outlet
    hours = (copy.published - source.published).total_seconds() / 3600
    assert 1 <= hours <= 12
    ops = {e.op: e for e in copy.edits}
    assert sorted(ops) == ["add", "drop", "number", "word"] and len(copy.edits) == 4

    for op in ("word", "number"):
        edit = ops[op]
        old, new = source.body[edit.source].split(), copy.body[edit.copy].split()
        assert len(old) == len(new)
        diff = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
        assert diff == [(edit.old, edit.new)], op
        if op == "number":
            assert edit.old.isdigit() and edit.new.isdigit()
        else:
            assert edit.old.isalpha() and edit.new.isalpha()
        # a one-token edit must stay a near-duplicate at the default threshold
        assert jaccard(source.body[edit.source], copy.body[edit.copy]) >= 0.8

    assert source.body[ops["drop"].source] not in copy.body
    assert copy.body[ops["add"].copy] not in source.body
    assert max(jaccard(copy.body[ops["add"].copy], p) for p in source.body) < 0.4

    edited_src = {e.source for e in copy.edits if e.source is not None}
    edited_copy = {e.copy for e in copy.edits if e.copy is not None}
    verbatim_src = [p for i, p in enumerate(source.body) if i not in edited_src]
    verbatim_copy = [p for i, p in enumerate(copy.body) if i not in edited_copy]
    assert verbatim_copy == verbatim_src
    assert len(copy.body) == len(source.body)


def test_shared_sentence_is_verbatim_in_two_different_stories() -> None:
    site = load_site()
    (shared,) = shared_sentences()
    a, b = (site.article(slug) for slug in shared.articles)
    assert a.outlet != b.outlet and a.syndicates is None and b.syndicates is None
    paras = []
    for art in (a, b):
        hits = [p for p in art.body if shared.text in p]
        assert len(hits) == 1, art.slug
        paras.append(hits[0])
    assert paras[0] != paras[1]
    rest = [p.replace(shared.text, "") for p in paras]
    assert min(len(r.split()) for r in rest) >= 15  # each paragraph has its own text around the quote
    ratio = len(paras[0]) / len(paras[1])
    assert 0.75 <= ratio <= 1.33
    assert jaccard(*paras) < 0.7  # sharing one sentence is not a near-duplicate paragraph
    for other in site.articles:
        if other.slug not in shared.articles:
            assert all(shared.text not in p for p in other.body)


def test_no_other_sentence_is_shared_between_stories() -> None:
    site = load_site()
    allowed = {s.text for s in site.shared_sentences}
    arts = site.articles
    for i, x in enumerate(arts):
        for y in arts[i + 1:]:
            if x.syndicates == y.slug or y.syndicates == x.slug:
                continue
            common = set(sentences(" ".join(x.body))) & set(sentences(" ".join(y.body)))
            assert common <= allowed, (x.slug, y.slug, common)


# --------------------------------------------------------------------------- feeds


def test_every_feed_parses_and_lists_its_articles(site: SampleSite) -> None:
    content = load_site()
    formats = {"rss": "rss20", "atom": "atom10"}
    for outlet in content.outlets.values():
        status, headers, body = fetch(site.url(outlet.feed.path))
        assert status == 200
        kind = "application/atom+xml" if outlet.feed.format == "atom" else "application/rss+xml"
        assert headers["Content-Type"] == f"{kind}; charset=utf-8"
        parsed = feedparser.parse(io.BytesIO(body))
        assert not parsed.bozo, (outlet.id, parsed.get("bozo_exception"))
        assert parsed.version == formats[outlet.feed.format]
        expected = {site.url(a.path) for a in content.of_outlet(outlet.id)}
        expected |= {site.url(content.article(p.slug).path) for p in outlet.partner_items}
        links = [entry.link for entry in parsed.entries]
        assert {strip_tracking(u) for u in links} == expected and len(links) == len(expected)
        titles = {e.title for e in parsed.entries}
        assert {a.title for a in content.of_outlet(outlet.id)} <= titles
        for entry in parsed.entries:
            assert entry.get("published_parsed"), entry.link
            if outlet.feed.guids:
                assert entry.id, entry.link
            else:  # identity must fall back to the link
                assert not entry.get("id"), entry.link
        assert [i.link for i in feed_items(content, outlet, site.base_url)] == links


def test_feed_link_shapes(site: SampleSite) -> None:
    content = load_site()
    harbor = feedparser.parse(io.BytesIO(fetch(site.url("/harbor-daily/feed.xml"))[2]))
    for entry in harbor.entries:
        q = parse_qs(urlsplit(entry.link).query)
        assert q["utm_source"] == ["rss"] and q["utm_medium"] == ["feed"] and q["utm_campaign"]
        assert entry.id.startswith("https://harbordaily.example/?p=")
    valley = feedparser.parse(io.BytesIO(fetch(site.url("/valley-post/atom.xml"))[2]))
    assert all(e.id.startswith("tag:valleypost.example,2025:") for e in valley.entries)
    ilbo = feedparser.parse(io.BytesIO(fetch(site.url("/seoul-ilbo/rss/allArticle.xml"))[2]))
    assert ilbo.feed.language == "ko"
    # the same story through two tracking URLs
    seed = content.article(SEED_SLUG)
    metro = feedparser.parse(io.BytesIO(fetch(site.url("/metro-wire/rss.xml"))[2]))
    partner = [e.link for e in metro.entries if urlsplit(e.link).path == seed.path]
    direct = [e.link for e in harbor.entries if urlsplit(e.link).path == seed.path]
    assert partner == [site.url(seed.path) + "?utm_source=metrowire&fbclid=abc123"]
    assert len(direct) == 1 and direct[0] != partner[0]
    bodies = {fetch(link)[2] for link in partner + direct}
    assert len(bodies) == 1


# --------------------------------------------------------------------------- pages


def test_every_article_page_has_its_body_and_boilerplate(site: SampleSite) -> None:
    content = load_site()
    for art in load_articles(site.base_url):
        status, headers, body = fetch(art.url)
        assert status == 200, art.url
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        text = page_text(body)
        doc = lxml.html.fromstring(body)
        assert doc.get("lang") == content.outlets[art.outlet].lang
        assert doc.xpath('//link[@rel="canonical"]/@href') == [art.url]
        assert doc.xpath('//meta[@property="og:url"]/@content') == [art.url]
        assert doc.xpath('//meta[@property="og:title"]/@content') == [art.title]
        assert doc.xpath('//meta[@property="article:published_time"]/@content') == [art.published.isoformat()]
        for para in art.body:
            assert norm(para) in text, (art.slug, para[:40])
        for s in boilerplate(art):
            assert norm(s) in text, (art.slug, s)


def _text_nodes(page: bytes) -> list[str]:
    doc = lxml.html.fromstring(page)
    for bad in doc.xpath("//script|//style|//head"):
        bad.drop_tree()
    out = []
    for el in doc.iter():
        for t in (el.text, el.tail):
            if t and t.strip():
                out.append(norm(t))
    return out


def test_boilerplate_list_is_complete(site: SampleSite) -> None:
    """Every sentence-like text on a page is body, title or listed boilerplate."""
    for art in load_articles():
        known = [norm(s) for s in (art.title, *art.body, *boilerplate(art))]
        for node in _text_nodes(fetch(site.url(art.path))[2]):
            if len(node.split()) >= 4:
                assert any(node in k for k in known), (art.slug, node)


def test_index_robots_and_404(site: SampleSite) -> None:
    status, _, body = fetch(site.url("/"))
    assert status == 200
    for outlet in load_site().outlets.values():
        assert outlet.feed.path.encode() in body
        assert fetch(site.url(outlet.home))[0] == 200
    status, headers, robots = fetch(site.url("/robots.txt"))
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    parser = RobotFileParser()
    parser.parse(robots.decode().splitlines())
    assert parser.can_fetch("news-ingest", site.url(load_articles()[0].path))
    assert not parser.can_fetch("news-ingest", site.url("/admin/login"))
    assert fetch(site.url("/no/such/page"))[0] == 404
    assert fetch(site.url("/admin/"))[0] == 404
    assert fetch(site.url("/seoul-ilbo/news/articleView.html"))[0] == 404
    assert fetch(site.url("/seoul-ilbo/news/articleView.html?idxno=20417&utm_source=x"))[0] == 200


# --------------------------------------------------------------------------- HTTP


def test_etag_and_last_modified_give_304(site: SampleSite) -> None:
    art = load_site().article(SEED_SLUG)
    url = site.url(art.path)
    status, headers, body = fetch(url)
    etag, last_mod = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert last_mod == "Tue, 17 Jun 2025 15:30:00 GMT"
    status, headers304, body304 = fetch(url, {"If-None-Match": etag})
    assert status == 304 and body304 == b"" and headers304["ETag"] == etag
    assert fetch(url, {"If-None-Match": '"other", ' + etag})[0] == 304
    assert fetch(url, {"If-None-Match": '"stale"'})[0] == 200
    assert fetch(url, {"If-Modified-Since": last_mod})[0] == 304
    assert fetch(url, {"If-Modified-Since": "Mon, 16 Jun 2025 00:00:00 GMT"})[0] == 200
    # If-None-Match wins over If-Modified-Since
    assert fetch(url, {"If-None-Match": '"stale"', "If-Modified-Since": last_mod})[0] == 200
    # feeds: Last-Modified is the newest item
    _, fh, _ = fetch(site.url("/metro-wire/rss.xml"))
    assert fh["Last-Modified"] == "Tue, 24 Jun 2025 05:40:00 GMT"
    assert fetch(site.url("/metro-wire/rss.xml"), {"If-None-Match": fh["ETag"]})[0] == 304


def test_gzip(site: SampleSite) -> None:
    url = site.url("/valley-post/atom.xml")
    _, plain_headers, plain = fetch(url)
    assert "Content-Encoding" not in plain_headers
    status, headers, packed = fetch(url, {"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in headers["Vary"]
    assert int(headers["Content-Length"]) == len(packed) < len(plain)
    assert gzip.decompress(packed) == plain
    assert headers["ETag"] != plain_headers["ETag"]
    assert fetch(url, {"Accept-Encoding": "gzip;q=0"})[1].get("Content-Encoding") is None
    # a validator from either representation revalidates the resource
    assert fetch(url, {"Accept-Encoding": "gzip", "If-None-Match": plain_headers["ETag"]})[0] == 304


def test_head_and_request_log(site: SampleSite) -> None:
    site.clear_requests()
    req = urllib.request.Request(site.url("/metro-wire/rss.xml?utm_source=x"), method="HEAD",
                                 headers={"User-Agent": "sample-site-test/1"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200 and resp.read() == b"" and int(resp.headers["Content-Length"]) > 0
    (record,) = site.requests
    method, path, headers = record
    assert method == "HEAD" and path == "/metro-wire/rss.xml?utm_source=x"
    assert headers["user-agent"] == "sample-site-test/1"


def test_write_feeds_file(site: SampleSite, tmp_path: Path) -> None:
    out = site.write_feeds_file(tmp_path / "conf" / "feeds.yaml")
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    names = [f["name"] for f in data["feeds"]]
    assert names == list(load_site().outlets)
    for feed in data["feeds"]:
        assert feed["url"].startswith(site.base_url + "/")
        assert fetch(feed["url"])[0] == 200


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.yaml"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "ingest.sample_site", "--port", "0", "--feeds-out", str(feeds)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            first = proc.stdout.readline()
            base = re.search(r"(http://127\.0\.0\.1:\d+)", first)
            assert base, first
            data = yaml.safe_load(feeds.read_text(encoding="utf-8"))
            assert all(f["url"].startswith(base.group(1)) for f in data["feeds"])
            assert fetch(base.group(1) + "/harbor-daily/feed.xml")[0] == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            assert proc.stderr.read() == ""
        finally:
            if proc.poll() is None:
                proc.kill()


# --------------------------------------------------------------------------- report


def test_report_what_plain_trafilatura_keeps(site: SampleSite) -> None:
    """Not an assertion: shows the boilerplate a plain extractor lets through."""
    print("\nboilerplate kept by trafilatura.extract(favor_precision=True):")
    for art in load_articles():
        page = fetch(site.url(art.path))[2].decode("utf-8")
        text = norm(trafilatura.extract(page, favor_precision=True) or "")
        kept = [s for s in boilerplate(art) if norm(s) in text]
        lost = [i for i, p in enumerate(art.body) if norm(p) not in text]
        print(f"  {art.outlet}/{art.slug}: kept {kept}" + (f"; body paragraphs lost {lost}" if lost else ""))
