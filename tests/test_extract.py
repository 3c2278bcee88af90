"""Extraction of whole pages: the seed, CJK pages, charsets, metadata."""

from __future__ import annotations

import html
import os
from pathlib import Path

import pytest

from ingest.extract import decode_html, extract_page
from tests.conftest import REPO


def _shared_seed() -> Path | None:
    for root in (os.environ.get("INGEST_SHARED_DIR"), REPO.parent / "shared", Path("/work/shared")):
        if root and (seeds := Path(root) / "seeds").is_dir():
            return next(iter(sorted(seeds.glob("*.txt"))), None)
    return None


SEED = _shared_seed()


def page(title: str, paragraphs: list[str], lang: str = "en", head: str = "") -> str:
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>{head}</head>'
        f"<body><header><nav><a href='/'>Home</a> <a href='/world'>World</a></nav></header>"
        f"<article><h1>{html.escape(title)}</h1>{body}</article><footer>Contact us</footer></body></html>"
    )


@pytest.mark.skipif(SEED is None, reason="the seed page lives in ../shared/seeds beside the repository; set INGEST_SHARED_DIR")
def test_seed_page_keeps_every_body_paragraph_and_no_boilerplate() -> None:
    assert SEED is not None
    lines = [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    title = lines[3]
    header, rest = lines[:3], lines[4:]
    boilerplate = {line for line in rest if line.startswith(("This photo", "BY ", "- Advertisement", "The Korea Daily Digital Team"))}
    body = [line for line in rest if line not in boilerplate]
    assert len(body) == 11 and len(boilerplate) == 7  # the seed's shape, as copied

    result = extract_page(page(title, lines[:3] + [title] + rest), "https://www.koreadailyus.com/north-korea-troops/")
    assert result.paragraphs == body
    stored = "\n".join(result.paragraphs)
    for line in [*header, *boilerplate]:
        assert line not in stored
    assert result.title == title and result.language == "en"


def test_korean_japanese_chinese_pages() -> None:
    cases = {
        "ko": ["서울시는 폭염에 대비해 무더위 쉼터 운영 시간을 오후 9시까지 연장한다고 17일 밝혔다. 시는 구청과 협력해 경로당과 주민센터 등 400여 곳을 쉼터로 지정했다.",
               "시 관계자는 낮 최고기온이 35도를 넘는 날이 이어질 것으로 보인다며 야외 활동을 자제해 달라고 당부했다.",
               "김서연 기자 seoyeon.kim@example.co.kr"],
        "ja": ["東京都は十七日、猛暑に備えて避難所の開設時間を午後九時まで延長すると発表した。区と協力して公民館など四百か所を指定する。",
               "都の担当者は、最高気温が三十五度を超える日が続く見込みだとして、屋外での活動を控えるよう呼びかけた。",
               "（共同）"],
        "zh": ["北京市十七日宣布，为应对高温天气，将把避暑场所的开放时间延长至晚上九点。市政府与各区合作，指定了约四百处场所。",
               "市政府官员表示，预计最高气温超过三十五度的天气将持续，呼吁市民减少户外活动。",
               "责任编辑：王明"],
    }
    for lang, paragraphs in cases.items():
        result = extract_page(page("폭염 쉼터" if lang == "ko" else "猛暑", paragraphs, lang=lang), f"https://{lang}.example/news/1")
        assert result.language == lang
        assert result.paragraphs[:2] == paragraphs[:2], lang
        assert paragraphs[2] not in result.paragraphs, f"{lang}: byline or credit kept"


def test_language_detected_from_text_when_the_page_does_not_say() -> None:
    paragraphs = ["서울시는 폭염에 대비해 무더위 쉼터 운영 시간을 오후 9시까지 연장한다고 17일 밝혔다. 시는 구청과 협력해 경로당과 주민센터 등 400여 곳을 쉼터로 지정했다."] * 1
    doc = page("쉼터", paragraphs).replace(' lang="en"', "")
    assert extract_page(doc).language == "ko"


def test_metadata() -> None:
    head = (
        '<meta property="article:published_time" content="2025-06-17T08:30:00-07:00">'
        '<meta property="og:site_name" content="Harbor Daily"><meta name="author" content="Mira Okafor">'
        '<link rel="canonical" href="https://harbor.example/2025/06/17/story/">'
    )
    result = extract_page(page("Ferry fares rise", ["The ferry operator raised fares by 8 percent on Monday, citing fuel costs and a new night crossing schedule."] * 1, head=head))
    assert result.published is not None and result.published.isoformat() == "2025-06-17T15:30:00+00:00"
    assert result.site_name == "Harbor Daily" and result.author == "Mira Okafor"
    assert result.url == "https://harbor.example/2025/06/17/story/"


def test_boilerplate_containers_are_pruned_and_reported() -> None:
    doc = page("Story", ["The council approved the budget on Monday after a long debate about road repairs and school funding."]).replace(
        "</article>",
        '<div class="td-author-box"><p>Jane Doe</p><p>Jane Doe writes about local politics for the paper and has covered city hall since 2015.</p></div>'
        '<div class="share-buttons">Share Facebook Twitter</div></article>',
    )
    result = extract_page(doc)
    assert result.paragraphs == ["The council approved the budget on Monday after a long debate about road repairs and school funding."]
    assert {r.rule for r in result.removed} >= {"html_block"}
    assert any("covered city hall" in r.text for r in result.removed)


def test_decode_html() -> None:
    korean = "<html><body><p>서울</p></body></html>"
    assert decode_html(korean.encode("euc-kr"), "text/html; charset=EUC-KR") == korean
    assert decode_html(b'<meta charset="iso-8859-1"><p>caf\xe9</p>') .endswith("café</p>")
    assert decode_html("<p>café</p>".encode()) == "<p>café</p>"
    assert "\ufffd" in decode_html(b"<p>\xff\xfe broken</p>", "text/html; charset=utf-8")


PARSE_CASES = [
    "<html><body><p>plain</p></body></html>",
    '<?xml version="1.0" encoding="utf-8"?><html><body><p>an XML declaration: lxml wants bytes</p></body></html>',
    "<!DOCTYPE html><html><head><title>t</title></head><body><div><p>a</p><p>b</p></div><!-- c --></body></html>",
    "<p>a fragment with one block</p>",
    "{\"not\": \"html\"}",
    "",
    "<html><body><form><input name=q><select><option>x</select></form><p>forms</p></body></html>",
]


@pytest.mark.parametrize("page", PARSE_CASES + [p.read_text(encoding="utf-8") for p in sorted((REPO / "tests/fixtures/heldout").glob("*.html"))])
def test_our_parser_builds_the_tree_trafilatura_would(page: str) -> None:
    """``_parse_html`` repeats trafilatura's ``load_html`` with a faster element lookup: if a
    trafilatura upgrade changes what ``load_html`` accepts or repairs, this fails."""
    from lxml import etree
    from trafilatura.utils import load_html

    from ingest.extract import _parse_html

    ours, theirs = _parse_html(page), load_html(page)
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert etree.tostring(ours) == etree.tostring(theirs)
