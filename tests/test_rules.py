"""Each news rule on its own: what it removes, and body text it must leave alone."""

from __future__ import annotations

import pytest

from ingest.rules import RULES, Page, apply_rules

BODY = [
    "North Korean leader Kim Jong-un has pledged to send 6,000 military engineers and construction troops to the region, "
    "according to officials who spoke after a meeting in the capital on Tuesday.",
    "By the end of the year, analysts expect the deployment to grow further, depending on how the reconstruction work "
    "proceeds and on the weather in the coming months.",
    "The advertising industry has struggled since the spring, and photo agencies report that demand for images fell by "
    "a third, the trade association said in its quarterly report.",
    "Readers can reach the newsroom at tips@example.com with questions about the investigation, the editors said in a note.",
]


def removed_by(paragraphs: list[str], **page: str) -> dict[str, str]:
    """Removed text → rule name, for a page made of ``paragraphs``."""
    kept, removed = apply_rules(Page(paragraphs=list(paragraphs), **page))  # type: ignore[arg-type]
    assert kept + [r.text for r in removed] != [], "nothing lost without a trace"
    assert sorted(kept + [r.text for r in removed]) == sorted(paragraphs)
    return {r.text: r.rule for r in removed}


def test_body_paragraphs_survive_every_rule() -> None:
    assert removed_by(BODY, title="Kim pledges troops", author="Chung Yeong-gyo") == {}


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("- Advertisement -", "ad_marker"),
        ("ADVERTISEMENT", "ad_marker"),
        ("Story continues below advertisement", "ad_marker"),
        ("광고", "ad_marker"),
        ("BY CHUNG YEONG-GYO [yoon.soyeon@joongang.co.kr]", "byline"),
        ("By Jane Doe, Staff Writer", "byline"),
        ("By Jane Doe and John Roe", "byline"),
        ("김서연 기자 seoyeon.kim@example.co.kr", "byline"),
        ("[kim.minji@example.com]", "byline"),
        ("(Reporting by Joyce Lee; Editing by Ed Davies)", "credit_line"),
        ("Additional reporting by Sam Holmes", "credit_line"),
        ("© 2025 The Harbor Daily. All rights reserved.", "credit_line"),
        ("무단전재 및 재배포 금지", "credit_line"),
        ("Yonhap", "credit_line"),
        ("This photo, carried by the official news agency on June 5, shows the leader meeting the minister. [YONHAP]", "photo_caption"),
        ("Rescue workers search the rubble in the old town on Monday. (AP Photo/Ahn Young-joon)", "photo_caption"),
        ("Children read in the library on June 12. (Photo by Luis Ferreira/Valley Post)", "photo_caption"),
        ("Photo: Getty Images", "photo_caption"),
        ("Share this article: Facebook X Email", "share_prompt"),
        ("Share on Facebook", "share_prompt"),
        ("Related: Ferry fares rise as port adds night crossings", "related_links"),
        ("READ MORE: Council approves the new budget", "related_links"),
        ("Sign up for our morning newsletter to get the day's top stories in your inbox.", "newsletter_prompt"),
        ("Subscribe now for unlimited digital access.", "subscription_prompt"),
        ("We use cookies to improve your experience on our site.", "cookie_notice"),
        ("Follow us on Twitter and Facebook", "follow_prompt"),
        ("Published June 17, 2025 at 12:05 p.m.", "timestamp_line"),
        ("Updated 3:45 PM EST, Tue June 17, 2025", "timestamp_line"),
        ("This story was first published by Harbor Daily and is republished here under a content-sharing agreement.", "republication_note"),
    ],
)
def test_boilerplate_line_is_removed_with_its_rule(line: str, rule: str) -> None:
    assert removed_by([*BODY[:2], line, *BODY[2:]]) == {line: rule}


def test_weather_header_before_the_story() -> None:
    header = ["84.1 F", "Los Angeles", "Tuesday, June 17, 2025"]
    assert removed_by([*header, *BODY]) == dict.fromkeys(header, "weather_widget")
    # a short line at the top without a temperature is not a weather widget
    assert removed_by(["Los Angeles", *BODY]) == {}


def test_headline_repeated_in_the_text() -> None:
    title = "North Korea to send 6,000 troops to Russia for reconstruction, says Moscow"
    assert removed_by([title, *BODY], title=title) == {title: "title_repeat"}


def test_caption_repeated_with_other_quotes_and_a_few_more_words() -> None:
    caption = ("This photo, carried by North Korea's official news agency on June 5, shows the leader, right, meeting "
               "the security chief in Pyongyang the previous day. [YONHAP]")
    curly = caption.replace("'", "’")
    longer = curly.replace("chief in", "chief, second from left, in")
    removed = removed_by([BODY[0], caption, curly, BODY[1], longer, BODY[2]])
    assert set(removed) == {caption, curly, longer}


def test_caption_of_a_figure_repeated_as_a_body_paragraph() -> None:
    echo = "County board chair Dana Whitlock and coordinator Ellen Varga tour the Delta Reach pumping station on June 3"
    page = Page(paragraphs=[BODY[0], echo + ".", BODY[1]], html_captions=[echo])
    kept, removed = apply_rules(page)
    assert [r.rule for r in removed] == ["photo_caption"] and kept == [BODY[0], BODY[1]]


def test_author_box_name_twice_then_bio() -> None:
    box = [
        "The Korea Daily Digital Team",
        "The Korea Daily Digital Team",
        "The Korea Daily Digital Team operates the largest Korean-language news platform in the United States, with a "
        "core staff of 10 digital journalists and a network of contributing authors.",
    ]
    removed = removed_by([*BODY, "BY CHUNG YEONG-GYO [yoon.soyeon@joongang.co.kr]", "- Advertisement -", *box])
    assert {removed[line] for line in box} == {"repeated_passage", "author_bio"}


def test_bio_of_the_byline_author() -> None:
    bio = "Mira Okafor covers county government and the port for the Harbor Daily, and joined the newsroom in 2019 after five years at the Delta Courier."
    removed = removed_by([*BODY, "By Mira Okafor", bio])
    assert removed[bio] == "author_bio"


def test_about_the_author_heading() -> None:
    bio = "Sam is a freelance writer based in Busan whose work has appeared in several regional magazines."
    assert removed_by([*BODY, "About the author", bio]) == {"About the author": "author_bio", bio: "author_bio"}


def test_repeated_body_text_is_left_to_deduplication() -> None:
    """A paragraph repeated on purpose (an interview question, a recipe step) is story text."""
    question = "What do you cook at home when you are not working in the restaurant, and who taught you?"
    assert removed_by([BODY[0], question, BODY[1], question, BODY[2]]) == {}


def test_short_repeated_lines_inside_the_story_stay() -> None:
    lines = ["Pre-Workout Meal", "Eat 60 to 90 minutes before your workout.", "Pre-Workout Meal"]
    assert removed_by([BODY[0], *lines, BODY[1]]) == {}


def test_a_sentence_ending_with_an_agency_is_not_a_caption() -> None:
    line = "The central bank left its key rate unchanged at 3.5 percent on Thursday, as most economists had expected. (Yonhap)"
    assert removed_by([BODY[0], line, BODY[1]]) == {}
    kept, removed = apply_rules(Page(paragraphs=[*BODY, line]))  # at the end of the story only the credit goes
    assert kept[-1] == line.removesuffix(" (Yonhap)") and [r.rule for r in removed] == ["trailing_credit"]


def test_every_rule_has_a_name() -> None:
    names = [rule.__name__ for rule in RULES]
    assert len(names) == len(set(names)) and "<lambda>" not in names


@pytest.mark.parametrize(
    "paragraph",
    [
        "Still, the report released by the central bank on Thursday shows that inflation eased for a third month, "
        "giving policymakers room to pause.",
        "An image released by the Pentagon shows the damaged radar site, which officials said had been hit by two drones.",
        "Research by the University of Michigan found that consumer sentiment fell sharply in June.",
        "Sweden applied to become a member of NATO in 2022, ending two centuries of military non-alignment.",
        "The new pass gives travelers unlimited access to domestic flights for a flat monthly fee.",
        "\u201cIf a message like this lands in your inbox, do not click the link,\u201d the FBI said in its warning.",
        "Regulators said the app had pressured users to accept all cookies before they could read a single article.",
        "General Motors is cutting 1,000 jobs at its Michigan plants, including engineering staff.",
        "文化和旅游部发布数据显示，端午节假期全国国内旅游出游1.1亿人次。",
        "记者从市交通委获悉，地铁5号线将于本月底开通运营。",
        "The landowners can write to the district office at conservation@gmd5.example.org or attend one of three public meetings.",
        "Updated figures released on Monday show the economy grew 3 percent in the second quarter.",
    ],
)
def test_story_text_that_looks_a_little_like_boilerplate_stays(paragraph: str) -> None:
    assert removed_by([BODY[0], BODY[1], paragraph, BODY[2]]) == {}


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("Passengers wait to board the morning ferry at the terminal on Monday (Harbor Ledger photo).", "photo_caption"),
        ("Apricot blossoms damaged by frost, east of Millbrook, Wednesday (Ravi Sandoval / Valley Courier)", "photo_caption"),
        ("改装された元呉服店の共同作業スペース（瀬戸内市港町で、山本健太撮影）", "photo_caption"),
        ("Reach Marisol Trent at mtrent@valleycourier.example or 555-0143.", "byline"),
        ("（山本健太）", "byline"),
        ("April 10, 2025 09:30 JSTLast updated: April 10, 2025 12:00 JST", "timestamp_line"),
        ("2025年4月11日 06:00最終更新：2025年4月11日 06:00", "timestamp_line"),
        ("Don't miss a story: subscribe to The Inland Sea Weekly newsletter.", "newsletter_prompt"),
        ("▼無料メルマガ登録はこちらから。最新ニュースを毎朝お届けします", "newsletter_prompt"),
        ("文/临江日报记者 李明 通讯员 陈芳", "byline"),
        ("Kenta Yamamoto writes about tourism and transport for the Setouchi Shimpo English edition.", "author_bio"),
    ],
)
def test_boilerplate_from_unseen_sites(line: str, rule: str) -> None:
    assert removed_by([*BODY[:2], line, *BODY[2:]]) == {line: rule}


def test_a_credit_naming_the_pages_own_outlet_is_a_caption() -> None:
    line = "Cyclists crossing the Kasumi Strait Bridge, April 8 (Setouchi Shimpo)"
    assert removed_by([*BODY, line], site_name="Setouchi Shimpo English") == {line: "photo_caption"}
    assert removed_by([*BODY, line]) == {}, "without knowing the outlet, a bracketed name is not enough"


def test_about_the_writer_box() -> None:
    box = ["この記事を書いた人", "山本健太", "山本健太（やまもと・けんた） 瀬戸内新報社会部記者。まちづくりと観光を担当。"]
    assert set(removed_by([*BODY, *box])) == set(box)


def test_an_agency_credit_glued_to_the_last_paragraph_is_trimmed() -> None:
    last = "沿線協議会は十六日、鉄道の運行を来年三月で終え、バス高速輸送システムに転換すると正式に決めた。（共同）"
    kept, removed = apply_rules(Page(paragraphs=[BODY[0], last]))
    assert kept == [BODY[0], last.removesuffix("（共同）")]
    assert [(r.rule, r.text) for r in removed] == [("trailing_credit", "（共同）")]
    # only at the very end of the story, and not a parenthesis that is part of a sentence
    kept, removed = apply_rules(Page(paragraphs=[last, BODY[0]]))
    assert removed == []
