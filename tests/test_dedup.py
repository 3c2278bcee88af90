"""Near-duplicate removal against the persistent index, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from sqlalchemy import Engine, event, func, select

from ingest import band_index, dedup
from ingest.db import open_store, transaction
from ingest.dedup import deduplicate_pending
from ingest.errors import UserError
from ingest.models import Article, ArticleStatus, IndexMeta, LshKey, Passage, RecentLshKey
from ingest.passages import jaccard, norm_hash, normalize, shingles
from ingest.settings import DedupSettings

T0 = datetime(2025, 6, 17, 12, tzinfo=timezone.utc)
P1 = ("Marlow County has pledged to send 1,200 civil engineers and construction workers to the flood-hit Delta Reach "
      "district, an area that was cut off for nearly three weeks after the spring storms, according to the state "
      "recovery coordinator, who is touring the district this week.")
P2 = ("Speaking to reporters after a meeting with county supervisors, the coordinator said that 300 engineers will "
      "inspect and repair the damaged levees, while 900 construction workers will help rebuild roads, culverts and "
      "pumping stations washed out by the floods.")
P3 = ("The county's decision rests on the regional mutual aid compact signed by the five river counties in March "
      "last year, which obliges members to share staff and equipment during declared emergencies of this kind.")
P4 = ("Local officials note that the move had been widely expected since April, when the county first admitted that "
      "its own levee teams were stretched thin after months of emergency repairs along the river.")
P5 = ("With the hurricane season approaching, further help from neighboring counties is expected, and the weather "
      "office warned that as much as 14 inches of rain could fall over the basin in the coming month.")
SHARED = ("\"We expect freight rates to stay elevated until the new terminal opens next spring,\" the shipping line "
          "said in a statement.")


def add(engine: Engine, url: str, paragraphs: list[str], published: datetime = T0) -> int:
    with transaction(engine) as session:
        article = Article(
            url=url, raw_url=url, source="test", status=ArticleStatus.extracted, discovered_at=T0, published=published,
            passages=[Passage(position=i, text=t, norm_hash=norm_hash(normalize(t))) for i, t in enumerate(paragraphs)],
        )
        session.add(article)
        session.flush()
        return article.id


def passages_of(engine: Engine, url: str) -> list[tuple[str, str | None, float | None]]:
    """(text, URL of the article holding the first appearance, similarity) per passage."""
    with transaction(engine) as session:
        article = session.scalars(select(Article).where(Article.url == url)).one()
        rows = []
        for p in article.passages:
            first = session.get(Passage, p.duplicate_of_id) if p.duplicate_of_id else None
            rows.append((p.text, session.get(Article, first.article_id).url if first else None, p.similarity))
        return rows


def duplicate_of(engine: Engine, url: str) -> str | None:
    with transaction(engine) as session:
        article = session.scalars(select(Article).where(Article.url == url)).one()
        assert article.status == ArticleStatus.stored
        return article.duplicate_of.url if article.duplicate_of else None


@pytest.fixture
def engine(db_url: str) -> Engine:
    return open_store(db_url)


SETTINGS = DedupSettings()
R = TypeVar("R")


def test_one_word_and_one_number_edits_are_caught_and_the_copy_is_marked(engine: Engine) -> None:
    add(engine, "https://a.example/original", [P1, P2, P3, P4, P5])
    word = P2.replace("inspect", "examine")
    number = P5.replace("14 inches", "16 inches")
    added = "In Fennick Valley, county staff said the deployment would not delay the repaving of Orchard Road or the new bridge."
    assert len(word.split()) >= 30 and len(number.split()) >= 30
    add(engine, "https://b.example/copy", [P1, word, P4, number, added], published=T0 + timedelta(hours=3))
    stats = deduplicate_pending(engine, SETTINGS)
    assert stats.articles_stored == 2 and stats.duplicate_articles == 1 and stats.duplicate_passages == 4

    copy = passages_of(engine, "https://b.example/copy")
    assert [first for _, first, _ in copy] == ["https://a.example/original"] * 4 + [None]
    assert copy[0][2] == 1.0 and 0.7 <= copy[1][2] < 1.0 and 0.7 <= copy[3][2] < 1.0
    assert duplicate_of(engine, "https://b.example/copy") == "https://a.example/original"
    assert duplicate_of(engine, "https://a.example/original") is None


def test_articles_compared_a_slice_at_a_time_find_the_same_copies(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies meet their originals, stored or earlier in the batch, whichever slice they fall in."""
    monkeypatch.setattr(dedup, "_COMPARED", 1)
    add(engine, "https://a.example/stored", [P1, P2, P3])
    deduplicate_pending(engine, SETTINGS)
    add(engine, "https://b.example/first", [P4, P5, SHARED], published=T0 + timedelta(hours=1))
    add(engine, "https://c.example/copy-of-stored", [P1, P2.replace("inspect", "examine"), P3], published=T0 + timedelta(hours=2))
    add(engine, "https://d.example/copy-of-first", [P4, P5.replace("14 inches", "16 inches"), SHARED], published=T0 + timedelta(hours=3))
    assert deduplicate_pending(engine, SETTINGS).duplicate_articles == 2
    assert duplicate_of(engine, "https://c.example/copy-of-stored") == "https://a.example/stored"
    assert duplicate_of(engine, "https://d.example/copy-of-first") == "https://b.example/first"
    assert duplicate_of(engine, "https://b.example/first") is None


def test_sharing_one_sentence_is_not_a_near_duplicate(engine: Engine) -> None:
    a = SHARED + " Growers say they cannot plan that far ahead, and several packers have asked the port for an extra weekend shift."
    b = ("The carrier raised its surcharge on cargo bound for Asian ports for the second time this year. " + SHARED)
    assert jaccard(shingles(normalize(a), 5), shingles(normalize(b), 5)) < 0.5
    add(engine, "https://a.example/growers", [a, P3])
    add(engine, "https://b.example/carrier", [b, P4], published=T0 + timedelta(hours=1))
    stats = deduplicate_pending(engine, SETTINGS)
    assert stats.duplicate_passages == 0 and stats.duplicate_articles == 0


def test_quote_dash_and_case_variants_are_exact_duplicates(engine: Engine) -> None:
    original = "The county’s plan — approved on Monday — sends “about 1,200” workers to the district, officials said."
    variant = "THE COUNTY'S PLAN - approved on Monday - sends \"about 1,200\" workers to the district, officials said"
    add(engine, "https://a.example/1", [original, P1])
    add(engine, "https://b.example/2", [variant, P2], published=T0 + timedelta(minutes=5))
    deduplicate_pending(engine, SETTINGS)
    assert passages_of(engine, "https://b.example/2")[0][1:] == ("https://a.example/1", 1.0)


def test_repeat_within_one_article_is_stored_once_and_is_not_self_duplication(engine: Engine) -> None:
    add(engine, "https://a.example/repeat", [P1, P2, P1.replace("three weeks", "3 weeks")])
    stats = deduplicate_pending(engine, SETTINGS)
    assert [first for _, first, _ in passages_of(engine, "https://a.example/repeat")] == [None, None, "https://a.example/repeat"]
    assert stats.duplicate_articles == 0 and duplicate_of(engine, "https://a.example/repeat") is None


def test_one_shared_passage_does_not_make_an_article_a_duplicate(engine: Engine) -> None:
    add(engine, "https://a.example/1", [P1, P2])
    add(engine, "https://b.example/2", [P1, P3, P4, P5], published=T0 + timedelta(hours=1))
    deduplicate_pending(engine, SETTINGS)
    assert duplicate_of(engine, "https://b.example/2") is None
    assert passages_of(engine, "https://b.example/2")[0][1] == "https://a.example/1"


def test_the_index_persists_between_runs(engine: Engine) -> None:
    add(engine, "https://a.example/1", [P1, P2, P3])
    deduplicate_pending(engine, SETTINGS)
    with transaction(engine) as session:
        keys = sum(session.scalar(select(func.count()).select_from(table)) or 0 for table in (LshKey, RecentLshKey))
    assert keys == 3 * SETTINGS.bands
    add(engine, "https://b.example/2", [P1.replace("civil", "structural"), P2, P3.replace("March", "May")], published=T0 + timedelta(days=1))
    assert deduplicate_pending(engine, SETTINGS).duplicate_articles == 1
    assert deduplicate_pending(engine, SETTINGS).articles_stored == 0, "nothing left: a re-run changes nothing"


def plans_during(engine: Engine, wanted: Callable[[str], bool], run: Callable[[], R]) -> tuple[R, list[str]]:
    """What ``run`` returns, and SQLite's query plan of each statement it sent that ``wanted`` picks."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if wanted(statement):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        result = run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with engine.connect() as connection:
        return result, [
            " / ".join(row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
            for statement, parameters in sent
        ]


def test_lookups_of_stored_passages_do_not_start_from_the_status_index(tmp_path: Path) -> None:
    """Without statistics, SQLite's planner took ``articles.status = 'stored'`` for a selective
    condition and answered each lookup of a few passages by scanning every stored article
    and its passages: at a million indexed passages that was a third of a batch's time."""
    engine = open_store(f"sqlite:///{tmp_path / 'plan.db'}")
    add(engine, "https://a.example/1", [P1, P2, P3])
    deduplicate_pending(engine, SETTINGS)
    add(engine, "https://b.example/1", [P1, P2.replace("300", "320"), P3], published=T0 + timedelta(days=1))
    stats, plans = plans_during(
        engine, lambda statement: statement.startswith("SELECT") and "FROM passages JOIN articles" in statement,
        lambda: deduplicate_pending(engine, SETTINGS),
    )
    assert stats.duplicate_articles == 1
    assert len(plans) >= 2, "the exact and the near lookup"
    for plan in plans:
        assert "ix_articles_status" not in plan, plan


def test_a_batch_reads_the_head_of_the_queue_without_sorting_the_backlog(tmp_path: Path) -> None:
    """Each batch used to sort every extracted article to take the first ones: a cost per
    batch that grew with the backlog. The partial index on the same order serves the head."""
    engine = open_store(f"sqlite:///{tmp_path / 'queue.db'}")
    for n, text in enumerate((P1, P2, P3)):
        add(engine, f"https://a.example/{n}", [text], published=T0 - timedelta(days=n))
    stats, plans = plans_during(
        engine, lambda statement: statement.startswith("SELECT articles.id") and "LIMIT" in statement,
        lambda: deduplicate_pending(engine, DedupSettings(batch_articles=2)),
    )
    assert stats.articles_stored == 3
    plan = plans[0]
    assert "ix_articles_dedup_queue" in plan and "TEMP B-TREE" not in plan, plan
    with transaction(engine) as session:
        stored = dict(session.execute(select(Article.url, Article.stored_at)).all())
    assert stored["https://a.example/2"] == stored["https://a.example/1"] < stored["https://a.example/0"], "the earliest published first"


def test_copies_are_found_on_both_sides_of_a_merge_of_recent_keys(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """New band keys wait in a small table until they are merged into the index; lookups
    read both, and the row counts that time the merges stay true."""
    monkeypatch.setattr(band_index, "MIN_RECENT_ROWS", 0)
    monkeypatch.setattr(band_index, "MERGE_RATIO", 1)  # merge once the recent rows reach the main ones

    def rows() -> tuple[int, int, dict[str, int]]:
        with transaction(engine) as session:
            meta = session.get(IndexMeta, "rows:lsh_keys")
            assert meta is not None
            return (*(session.scalar(select(func.count()).select_from(t)) or 0 for t in (LshKey, RecentLshKey)), meta.value)  # type: ignore[return-value]

    add(engine, "https://a.example/1", [P1, P2, P3])
    deduplicate_pending(engine, SETTINGS)
    bands = SETTINGS.bands
    assert rows() == (3 * bands, 0, {"main": 3 * bands, "recent": 0}), "the first keys are merged at once"
    add(engine, "https://b.example/2", [P4, P5], published=T0 + timedelta(hours=1))
    deduplicate_pending(engine, SETTINGS)
    assert rows() == (3 * bands, 2 * bands, {"main": 3 * bands, "recent": 2 * bands}), "fewer recent rows than main ones wait"
    add(engine, "https://c.example/3", [P1.replace("civil", "structural"), P2, P4.replace("April", "May")], published=T0 + timedelta(hours=2))
    deduplicate_pending(engine, SETTINGS)
    assert [url for _text, url, _sim in passages_of(engine, "https://c.example/3")] == [
        "https://a.example/1", "https://a.example/1", "https://b.example/2"]
    add(engine, "https://d.example/4", [SHARED], published=T0 + timedelta(hours=3))
    deduplicate_pending(engine, SETTINGS)
    assert rows() == (6 * bands, 0, {"main": 6 * bands, "recent": 0}), "merged when the recent rows reach the main ones"
    with transaction(engine) as session:
        band_index.PASSAGES.remove(session, [session.scalars(select(Passage.id).where(Passage.text == SHARED)).one()])
    assert rows() == (5 * bands, 0, {"main": 5 * bands, "recent": 0})


def test_first_appearance_is_the_earliest_published(engine: Engine) -> None:
    add(engine, "https://late.example/x", [P1, P2], published=T0 + timedelta(hours=5))
    add(engine, "https://early.example/x", [P1, P2], published=T0)
    deduplicate_pending(engine, SETTINGS)
    assert duplicate_of(engine, "https://late.example/x") == "https://early.example/x"


def test_short_passages_only_match_exactly(engine: Engine) -> None:
    add(engine, "https://a.example/1", ["He said no.", P1])
    add(engine, "https://b.example/2", ["He said so.", "He said no.", P2], published=T0 + timedelta(hours=1))
    deduplicate_pending(engine, SETTINGS)
    assert [first for _, first, _ in passages_of(engine, "https://b.example/2")] == [None, "https://a.example/1", None]


def test_korean_passage_with_one_edited_word(engine: Engine) -> None:
    ko = "서울시는 폭염에 대비해 무더위 쉼터 운영 시간을 오후 9시까지 연장한다고 17일 밝혔다. 시는 구청과 협력해 경로당과 주민센터 등 400여 곳을 쉼터로 지정했다."
    other = "시 관계자는 낮 최고기온이 35도를 넘는 날이 이어질 것으로 보인다며 야외 활동을 자제해 달라고 당부했다. 시민들은 가까운 쉼터 위치를 누리집에서 확인할 수 있다."
    add(engine, "https://ko.example/1", [ko, other])
    add(engine, "https://ko.example/2", [ko.replace("경로당과", "복지관과"), "부산시도 같은 날 비슷한 대책을 발표하며 해수욕장 주변에 그늘막 200개를 추가로 설치하겠다고 밝혔다."], published=T0 + timedelta(hours=1))
    deduplicate_pending(engine, SETTINGS)
    rows = passages_of(engine, "https://ko.example/2")
    assert rows[0][1] == "https://ko.example/1" and rows[1][1] is None


def test_an_index_built_with_other_parameters_is_refused(engine: Engine) -> None:
    add(engine, "https://a.example/1", [P1])
    deduplicate_pending(engine, SETTINGS)
    add(engine, "https://b.example/2", [P2])
    with pytest.raises(UserError, match=rf"other MinHash parameters \(num_perm {SETTINGS.num_perm} → 256"):
        deduplicate_pending(engine, DedupSettings(num_perm=256))
    with transaction(engine) as session:  # an index hashed by another version of the code
        meta = session.get(IndexMeta, "minhash")
        assert meta is not None
        meta.value = {**meta.value, "normalization": meta.value["normalization"] - 1}
    with pytest.raises(UserError, match=r"\(normalization \d+ → \d+\); rebuild the index with these: `ingest reindex`"):
        deduplicate_pending(engine, SETTINGS)  # no settings bring that back: the message offers only the rebuild


def test_reindex_rebuilds_an_index_made_with_other_parameters(engine: Engine) -> None:
    """The way out of the refusal above: every stored article is deduplicated again with the
    current parameters, and comes out with the same decisions and its first storage time."""
    older = DedupSettings(num_perm=64, bands=16, rows=4)
    add(engine, "https://a.example/original", [P1, P2, P3, P4, P5])
    add(engine, "https://b.example/copy", [P1, P2.replace("inspect", "examine"), P4, P5.replace("14 inches", "16 inches")],
        published=T0 + timedelta(hours=3))
    for n, story in enumerate(STORIES):
        add(engine, f"https://harbor.example/{n}", [*story, BIO], published=T0 + timedelta(hours=4 + n))
    first = deduplicate_pending(engine, older)
    urls = ["https://a.example/original", "https://b.example/copy", *(f"https://harbor.example/{n}" for n in range(3))]

    def state() -> list[object]:
        with transaction(engine) as session:
            stored = [session.scalars(select(Article.stored_at).where(Article.url == url)).one() for url in urls]
        return [*(passages_of(engine, url) for url in urls), *(duplicate_of(engine, url) for url in urls),
                *(template_flags(engine, url) for url in urls[2:]), stored]

    before = state()
    with pytest.raises(UserError, match="ingest reindex"):
        deduplicate_pending(engine, SETTINGS)
    queued, stats = dedup.rebuild(engine, SETTINGS)
    assert queued == 5 and stats == first and stats.template_passages == 3
    assert state() == before
    with transaction(engine) as session:  # only today's rows: one per band and indexed passage, counted right
        for index in (band_index.PASSAGES, band_index.ARTICLES):
            ids = [i for table in (index.main, index.recent) for i in session.scalars(select(table.c[index.column]))]
            assert len(ids) == SETTINGS.bands * len(set(ids)) > 0
            counted = session.get(IndexMeta, f"rows:{index.main.name}")
            assert counted is not None and counted.value["main"] + counted.value["recent"] == len(ids)
    add(engine, "https://c.example/later", [P1, P2, P3.replace("March", "May"), P4], published=T0 + timedelta(hours=9))
    deduplicate_pending(engine, SETTINGS)  # the rebuilt index, with today's parameters, serves new articles
    assert duplicate_of(engine, "https://c.example/later") == "https://a.example/original"
    with transaction(engine) as session:
        assert session.get(IndexMeta, "minhash").value["bands"] == SETTINGS.bands  # type: ignore[union-attr]
    with pytest.raises(UserError, match="other MinHash parameters"):
        deduplicate_pending(engine, older)  # a worker left on the old settings


def test_a_shared_footer_does_not_make_an_article_a_duplicate(engine: Engine) -> None:
    footer = ("Markets Daily is published by Example Media. Quotes are delayed by at least 15 minutes; all data is "
              "provided for information only and is not a recommendation to buy or sell any security.")
    add(engine, "https://markets.example/oil", ["Oil rose 2 percent on Tuesday after a pipeline outage in Canada.", footer])
    add(engine, "https://markets.example/tesla", ["Tesla shares slid after the delivery report missed forecasts.", footer],
        published=T0 + timedelta(hours=1))
    deduplicate_pending(engine, SETTINGS)
    assert duplicate_of(engine, "https://markets.example/tesla") is None
    assert passages_of(engine, "https://markets.example/tesla")[1][1] == "https://markets.example/oil"


BIO = ("Mira Okafor covers county government and the port for the Harbor Daily. She joined the newsroom in 2019 "
       "after five years at the Delta Courier.")
STORIES = [
    [P1, P2, P3],
    [P4, P5, "Ferry fares will rise by 8 percent on July 1, the port authority said, citing fuel costs and a new night crossing."],
    ["The tide-pool count found 412 sea stars, the most since volunteers began counting in 2009, organisers said.", SHARED, P2.replace("inspect", "check")],
]


def template_flags(engine: Engine, url: str) -> list[bool]:
    with transaction(engine) as session:
        article = session.scalars(select(Article).where(Article.url == url)).one()
        return [p.template for p in article.passages]


def test_a_bio_one_site_repeats_is_template_text(engine: Engine) -> None:
    for n, story in enumerate(STORIES):
        add(engine, f"https://harbor.example/{n}", [*story, BIO], published=T0 + timedelta(hours=n))
    stats = deduplicate_pending(engine, SETTINGS)
    assert stats.template_passages == 3
    for n in range(3):
        assert template_flags(engine, f"https://harbor.example/{n}") == [False, False, False, True]
        assert duplicate_of(engine, f"https://harbor.example/{n}") is None


def test_template_passages_are_counted_once_across_batches(engine: Engine) -> None:
    """Each batch flags every copy of a template again; the run counts only new flags."""
    fourth = ["The council approved 41 million dollars for road repairs over three years, starting with the bridges."]
    for n, story in enumerate([*STORIES, fourth]):
        add(engine, f"https://harbor.example/{n}", [*story, BIO], published=T0 + timedelta(hours=n))
    stats = deduplicate_pending(engine, SETTINGS.model_copy(update={"batch_articles": 1}))
    assert stats.template_passages == 4
    assert [template_flags(engine, f"https://harbor.example/{n}")[-1] for n in range(4)] == [True] * 4


def test_the_same_passage_on_three_sites_is_not_a_template(engine: Engine) -> None:
    for n, story in enumerate(STORIES):
        add(engine, f"https://site{n}.example/story", [*story, BIO], published=T0 + timedelta(hours=n))
    assert deduplicate_pending(engine, SETTINGS).template_passages == 0


def test_background_reused_mid_story_is_not_a_template(engine: Engine) -> None:
    background = ("The port has been run by a public authority since 1962, when the state bought it from the railway "
                  "company that built the first piers.")
    texts = [P1, P2, P3, P4, P5, STORIES[1][2], STORIES[2][0], SHARED + " Growers say they cannot plan that far ahead.",
             "Volunteers planted 3,000 oak seedlings along the river bank on Saturday, the parks department said.",
             "The school board voted 5-2 to move the start of classes to 8:30 a.m. from next autumn.",
             "Fishermen reported the largest salmon run in a decade, with catches up by nearly a third.",
             "A new bus line will link the airport with the old town every fifteen minutes from June.",
             "The museum reopened its east wing after a two-year renovation that cost 14 million dollars.",
             "Police closed the coastal highway for six hours after a rock slide near the northern tunnel.",
             "The hospital opened a night clinic for children, staffed by two doctors and four nurses."]
    for n in range(3):
        own = texts[n * 5 : n * 5 + 5]
        add(engine, f"https://harbor.example/{n}", [own[0], own[1], background, own[2], own[3], own[4]],
            published=T0 + timedelta(hours=n))
    stats = deduplicate_pending(engine, SETTINGS)
    assert stats.duplicate_passages == 2 and stats.template_passages == 0


def test_template_found_across_runs_is_left_out_of_every_copy(engine: Engine) -> None:
    import io

    from ingest.export import export_articles

    for n, story in enumerate(STORIES):
        add(engine, f"https://harbor.example/{n}", [*story, BIO], published=T0 + timedelta(hours=n))
        deduplicate_pending(engine, SETTINGS)  # one article per run
    out = io.StringIO()
    export_articles(str(engine.url), out)
    assert BIO not in out.getvalue() and P1 in out.getvalue()


def test_a_new_days_figures_are_a_new_passage(engine: Engine) -> None:
    """The same sentence frame with other figures is another report, not a copy."""
    day1 = ("Treasury balances at the Federal Reserve rose on March 6 to 3.879 billion dlrs from 3.467 billion dlrs "
            "the previous business day, the Treasury said in its latest budget statement.")
    day2 = ("Treasury balances at the Federal Reserve fell on March 5 to 3.467 billion dlrs from 3.939 billion dlrs "
            "the previous business day, the Treasury said in its latest budget statement.")
    add(engine, "https://wire.example/5", [day2, P1])
    add(engine, "https://wire.example/6", [day1, P2], published=T0 + timedelta(days=1))
    deduplicate_pending(engine, SETTINGS)
    assert passages_of(engine, "https://wire.example/6")[0][1] is None


def test_japanese_and_chinese_passages_shingle_by_characters(engine: Engine) -> None:
    ja = "東京都は十七日、猛暑に備えて避難所の開設時間を午後九時まで延長すると発表した。区と協力して公民館など四百か所を指定する。"
    zh = "北京市十七日宣布，为应对高温天气，将把避暑场所的开放时间延长至晚上九点。市政府与各区合作，指定了约四百处场所。"
    add(engine, "https://ja.example/1", [ja, zh])
    add(engine, "https://ja.example/2", [ja.replace("四百", "五百"), zh.replace("四百", "五百")], published=T0 + timedelta(hours=1))
    deduplicate_pending(engine, SETTINGS)
    assert [first for _, first, _ in passages_of(engine, "https://ja.example/2")] == ["https://ja.example/1"] * 2


def test_shingling_in_slices_gives_the_same_shingles(monkeypatch: pytest.MonkeyPatch) -> None:
    """A large batch is shingled a slice of characters at a time (bounded memory): the result
    must not depend on where the slices fall."""
    import numpy as np

    from ingest import minhash

    sketcher = minhash.Sketcher(SETTINGS)
    texts = [normalize(p) for p in (P1, P2, "", "short", P3, "東京都は本日、新しい防災計画を発表した。", P4, P5, SHARED)] * 3
    whole = sketcher.shingles(texts)
    for chars in (1, 50, 300, 1000):
        monkeypatch.setattr(minhash, "_CHUNK_CHARS", chars)
        bounds, hashes = sketcher.shingles(texts)
        assert np.array_equal(bounds, whole[0]) and np.array_equal(hashes, whole[1])


@pytest.mark.parametrize("texts", [[P1, "", "  two  spaces ", "é ü", "x" * 200 + " y"], [], [""], [" "]])
def test_word_hashes_are_each_words_own(texts: list[str]) -> None:
    """Word hashes come from prefix sums over the whole batch: each must equal the word's
    polynomial hash computed on its own, wherever the word sits and however long it is."""
    from ingest.passages import _BASE, _flat_units, fmix32

    def alone(word: str) -> int:
        return sum(ord(c) * pow(_BASE, n, 1 << 32) for n, c in enumerate(word)) % (1 << 32)

    units, counts = _flat_units(texts, "word")
    expected = [alone(word) for text in texts for word in text.split(" ") if word]
    assert units.tolist() == fmix32(np.asarray(expected, dtype=np.uint32)).tolist()
    assert counts.tolist() == [len(text.split()) for text in texts]


@pytest.mark.parametrize("values", [[], [7], [3, 1, 3, 2, 1], [[5, 4], [4, 9]], list(range(1000, 0, -3)) * 2])
def test_distinct_is_np_unique(values: list[Any]) -> None:
    array = np.asarray(values, dtype=np.int64)
    assert np.array_equal(band_index.distinct(array), np.unique(array))
