"""Bad input loses nothing: broken feeds never stop the others, failed pages keep their reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.db import open_store, transaction
from ingest.models import Article, ArticleStatus, Capture, Feed
from ingest.pipeline import deduplicate, ingest_batch, plan
from ingest.sample_site import SampleSite, load_articles
from ingest.settings import Settings
from tests.conftest import make_settings
from tests.local_http import LocalServer, Request

ARTICLE = (
    "<html lang='en'><head><title>Council approves budget</title></head><body><article><h1>Council approves budget</h1>"
    "<p>The city council approved a 40 million dollar budget on Monday after a long debate about road repairs, "
    "school funding and the future of the harbor ferry service.</p>"
    "<p>Council members said the plan would be reviewed again in the autumn, when revenue figures for the summer "
    "season are known and the new ferry contract has been signed.</p></article></body></html>"
)


def rss(server: LocalServer, *paths: str) -> bytes:
    items = "".join(f"<item><title>{p}</title><link>{server.url(p)}</link><guid>{p}</guid></item>" for p in paths)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as local:
        yield local


def serve_stories(server: LocalServer, count: int) -> list[str]:
    """Routes ``/story/0`` … ``/story/{count - 1}``: ``ARTICLE`` with the path in place of "Monday",
    so that no two pages are the same. Returns the paths."""
    paths = [f"/story/{n}" for n in range(count)]
    for path in paths:
        server.route(path, lambda r, path=path: (200, {"Content-Type": "text/html"}, ARTICLE.replace("Monday", path).encode()))
    return paths


def write_feeds(path: Path, feeds: dict[str, str]) -> Path:
    path.write_text("feeds:\n" + "".join(f"  - name: {n}\n    url: {u}\n" for n, u in feeds.items()), encoding="utf-8")
    return path


def run(settings: Settings) -> dict[str, int]:
    totals: dict[str, int] = {}
    for batch in plan(settings):
        for key, value in ingest_batch(settings, batch).items():
            totals[key] = totals.get(key, 0) + value
    totals.update(deduplicate(settings))
    return totals


def feed_rows(settings: Settings) -> dict[str, Feed]:
    with transaction(open_store(settings.db_url)) as session:
        return {f.name: f for f in session.scalars(select(Feed))}


def article_rows(settings: Settings) -> dict[str, Article]:
    with transaction(open_store(settings.db_url)) as session:
        return {a.url.rsplit("/", 1)[-1]: a for a in session.scalars(select(Article))}


def test_broken_feeds_never_stop_the_others(sample_site: SampleSite, server: LocalServer, tmp_path: Path) -> None:
    server.route("/gone.xml", lambda r: (404, {}, b"not here"))
    server.route("/html.xml", lambda r: (200, {"Content-Type": "text/html"}, b"<html><body>Welcome!</body></html>"))
    server.route("/truncated.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, "/a")[:60]))
    server.route("/busy.xml", lambda r: (503, {"Retry-After": "3600"}, b""))
    feeds = {name: url for name, url in sample_site.feeds if name == "harbor-daily"}
    feeds.update({n: server.url(f"/{n}.xml") for n in ("gone", "html", "truncated", "busy")})
    feeds["refused"] = "http://127.0.0.1:1/feed.xml"
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'news.db'}", write_feeds(tmp_path / "feeds.yaml", feeds))

    stats = run(settings)
    assert stats["feeds_fetched"] == 1 and stats["feeds_failed"] == 5
    harbor = [a for a in load_articles(sample_site.base_url) if a.outlet == "harbor-daily"]
    assert stats["articles_stored"] == len(harbor)

    rows = feed_rows(settings)
    assert "404" in (rows["gone"].last_error or "")
    assert "not a feed" in (rows["html"].last_error or "")
    assert "not a feed" in (rows["truncated"].last_error or "")
    assert "refused" in (rows["refused"].last_error or "").lower() or "connect" in (rows["refused"].last_error or "").lower()
    now = datetime.now(timezone.utc)
    for name in ("gone", "html", "truncated", "busy", "refused"):
        assert rows[name].error_count == 1 and rows[name].backoff_until is not None and rows[name].backoff_until > now
    assert (rows["busy"].backoff_until - now).total_seconds() > 3000, "Retry-After is honoured by the back-off"

    again = run(settings)
    assert again["feeds_backing_off"] == 5 and again["feeds_failed"] == 0, "failed feeds wait for their back-off"


def test_failed_pages_are_recorded_with_their_reason(server: LocalServer, tmp_path: Path) -> None:
    flaky = {"calls": 0}

    def sometimes(request: Request) -> tuple[int, dict[str, str], bytes]:
        flaky["calls"] += 1
        return (500, {}, b"oops") if flaky["calls"] <= 2 else (200, {"Content-Type": "text/html"}, ARTICLE.encode())

    server.route("/feed.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, "/ok", "/pdf", "/private/x", "/flaky", "/empty")))
    server.route("/robots.txt", lambda r: (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"))
    server.route("/ok", lambda r: (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.encode()))
    server.route("/pdf", lambda r: (200, {"Content-Type": "application/pdf"}, b"%PDF-1.7"))
    server.route("/flaky", sometimes)
    server.route("/empty", lambda r: (200, {"Content-Type": "text/html"}, b"<html><body></body></html>"))
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'news.db'}", write_feeds(tmp_path / "feeds.yaml", {"local": server.url("/feed.xml")}))

    stats = run(settings)
    assert stats["pages_fetched"] == 1 and stats["articles_stored"] == 1
    rows = article_rows(settings)
    assert rows["ok"].status == ArticleStatus.stored
    assert rows["pdf"].status == ArticleStatus.skipped and "not an HTML page (application/pdf)" in (rows["pdf"].error or "")
    assert rows["x"].status == ArticleStatus.skipped and "robots.txt" in (rows["x"].error or "")
    assert rows["flaky"].status == ArticleStatus.failed and "HTTP 500" in (rows["flaky"].error or "")
    assert rows["empty"].status == ArticleStatus.skipped and "no article text" in (rows["empty"].error or "")
    assert "/private/x" not in server.paths()

    again = run(settings)  # the flaky page is tried again and now works
    assert again["pages_fetched"] == 1 and article_rows(settings)["flaky"].status == ArticleStatus.stored
    with transaction(open_store(settings.db_url)) as session:
        captures = session.scalars(select(Capture).where(Capture.kind == "page")).all()
    assert sorted(c.status or 0 for c in captures).count(500) == 1, "every fetch is on record, failures too"


def test_private_addresses_are_refused_unless_allowed(server: LocalServer, tmp_path: Path) -> None:
    server.route("/feed.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, "/ok")))
    feeds = write_feeds(tmp_path / "feeds.yaml", {"local": server.url("/feed.xml")})
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'news.db'}", feeds).model_copy(update={"allow_private_networks": False})
    stats = run(settings)
    assert stats["feeds_failed"] == 1 and server.requests == []
    assert "not a public address" in (feed_rows(settings)["local"].last_error or "")


def test_a_feed_listing_the_same_story_twice_and_another_feed_listing_it_again(server: LocalServer, tmp_path: Path) -> None:
    server.route("/ok", lambda r: (200, {"Content-Type": "text/html"}, ARTICLE.encode()))
    body = rss(server, "/ok?utm_source=a", "/ok?utm_source=b&fbclid=1")
    server.route("/a.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, body))
    server.route("/b.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, "/ok?utm_medium=email")))
    feeds = write_feeds(tmp_path / "feeds.yaml", {"a": server.url("/a.xml"), "b": server.url("/b.xml")})
    stats = run(make_settings(tmp_path, f"sqlite:///{tmp_path / 'news.db'}", feeds))
    assert stats["entries_new"] == 3 and stats["articles_stored"] == 1
    assert server.paths().count("/ok") == 1, "one story, fetched once"


def test_one_poisonous_page_or_entry_never_stops_the_batch(server: LocalServer, db_url: str, tmp_path: Path) -> None:
    """A charset Python does not know, a redirect to a 3,000-character URL (too long for an
    indexed column), an entry with a broken port: each is recorded, the rest is stored."""
    thai = ("<html><head><meta charset='windows-874'><title>ข่าว</title></head><body><article>"
            "<p>" + "ข่าวเศรษฐกิจวันนี้ " * 20 + "</p></article></body></html>").encode("cp874")
    server.route("/thai", lambda r: (200, {"Content-Type": "text/html; charset=windows-874"}, thai))
    server.route("/campaign", lambda r: (302, {"Location": "/ok2?" + "x" * 3000}, b""))
    server.route("/ok2", lambda r: (200, {"Content-Type": "text/html"}, ARTICLE.replace("budget", "plan").encode()))
    server.route("/ok", lambda r: (200, {"Content-Type": "text/html"}, ARTICLE.encode()))
    body = rss(server, "/thai", "/campaign", "/ok").replace(b"</channel>", b"<item><title>bad</title><link>https://news.example:8o8o/x</link></item></channel>")
    server.route("/feed.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, body))
    settings = make_settings(tmp_path, db_url, write_feeds(tmp_path / "feeds.yaml", {"local": server.url("/feed.xml")}))
    stats = run(settings)
    assert stats["feeds_fetched"] == 1 and stats["entries_new"] == 3
    rows = article_rows(settings)
    assert rows["ok"].status == ArticleStatus.stored and rows["campaign"].status == ArticleStatus.stored
    assert rows["thai"].status == ArticleStatus.stored and rows["thai"].language == "th"


def test_two_workers_on_the_same_feed_fetch_each_page_once(server: LocalServer, db_url: str, tmp_path: Path) -> None:
    """A backfill beside a scheduled run: pages are claimed before they are fetched."""
    import threading

    paths = serve_stories(server, 40)
    server.route("/feed.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, *paths)))
    settings = make_settings(tmp_path, db_url, write_feeds(tmp_path / "feeds.yaml", {"local": server.url("/feed.xml")}))
    plan(settings)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            ingest_batch(settings, ["local"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    fetched = [p for p in server.paths() if p.startswith("/story/")]
    assert sorted(fetched) == sorted(paths), "every page fetched exactly once"
    assert {a.status for a in article_rows(settings).values()} == {ArticleStatus.extracted}


def test_feeds_listing_the_same_stories_in_opposite_orders_do_not_deadlock(server: LocalServer, db_url: str, tmp_path: Path) -> None:
    import threading

    paths = [f"/s/{n}" for n in range(300)]
    server.route("/a.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, *paths)))
    server.route("/b.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, *reversed(paths))))
    settings = make_settings(tmp_path, db_url, write_feeds(tmp_path / "feeds.yaml", {"a": server.url("/a.xml"), "b": server.url("/b.xml")}))
    plan(settings)
    runner = settings.model_copy(update={"max_page_attempts": 1})
    results: dict[str, dict[str, int]] = {}
    threads = [threading.Thread(target=lambda n=n: results.setdefault(n, ingest_batch(runner, [n]))) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["a"]["feeds_fetched"] == results["b"]["feeds_fetched"] == 1
    assert results["a"]["entries_new"] == results["b"]["entries_new"] == 300
    assert results["a"]["articles_new"] + results["b"]["articles_new"] >= 300
    assert len(article_rows(settings)) == 300


def test_a_killed_owner_takes_its_claims_back_at_once_and_nobody_else_does(server: LocalServer, db_url: str, tmp_path: Path) -> None:
    """A worker killed with SIGKILL leaves its pages claimed. The retry of the same task
    (same owner) fetches them at once; another task leaves them alone until the lease ends."""
    from ingest.batch import BatchRunner

    answers = iter([(503, {}, b"busy")] * 2)  # the first fetch and its one retry
    server.route("/story", lambda r: next(answers, (200, {"Content-Type": "text/html"}, ARTICLE.encode())))
    server.route("/feed.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, "/story")))
    settings = make_settings(tmp_path, db_url, write_feeds(tmp_path / "feeds.yaml", {"local": server.url("/feed.xml")}))
    plan(settings)
    assert ingest_batch(settings, ["local"])["pages_failed"] == 1  # due again at the next run
    killed = BatchRunner(settings, open_store(settings.db_url), owner="run-1/ingest_batch/0")
    assert [claim.url for claim in killed._claim(["local"], set())] == [server.url("/story")]  # ... and dies here

    assert ingest_batch(settings, ["local"], owner="run-2/ingest_batch/0").get("pages_fetched", 0) == 0
    assert ingest_batch(settings, ["local"], owner="run-1/ingest_batch/0")["pages_fetched"] == 1
    assert article_rows(settings)["story"].status == ArticleStatus.extracted
    assert article_rows(settings)["story"].claimed_by is None


def test_extraction_processes_store_what_threads_store(server: LocalServer, tmp_path: Path) -> None:
    """Pages extracted in a process pool (every core) end up exactly as in-process ones,
    a page that crashes or holds no text included."""
    paths = serve_stories(server, 20)
    server.route("/story/empty", lambda r: (200, {"Content-Type": "text/html"}, b"<html><body></body></html>"))
    server.route("/feed.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, *paths, "/story/empty")))
    feeds = write_feeds(tmp_path / "feeds.yaml", {"local": server.url("/feed.xml")})
    outcomes = []
    for processes in (1, 2):
        settings = make_settings(tmp_path / str(processes), f"sqlite:///{tmp_path / f'{processes}.db'}", feeds, extract_processes=processes)
        totals = run(settings)
        rows = article_rows(settings)
        outcomes.append((totals["pages_fetched"], {k: (a.status, a.title, a.error) for k, a in rows.items()}))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 20


def test_feeds_read_in_extraction_processes_are_recorded_as_in_threads(server: LocalServer, tmp_path: Path) -> None:
    """Once a batch's extraction processes run, they parse its feeds too: a broken feed read
    there fails with the same reason, and a good one brings the same entries."""
    import time

    paths = serve_stories(server, 20)

    def later(body: bytes, kind: str = "application/rss+xml") -> Callable[[Request], tuple[int, dict[str, str], bytes]]:
        def answer(request: Request) -> tuple[int, dict[str, str], bytes]:
            time.sleep(1.0)  # after the first feed's 20 pages have started the processes
            return 200, {"Content-Type": kind}, body
        return answer

    server.route("/feed.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, *paths)))
    server.route("/late.xml", later(rss(server, "/story/1", "/story/late")))
    server.route("/html.xml", later(b"<html><body>Welcome!</body></html>", "text/html"))
    server.route("/truncated.xml", later(rss(server, "/a")[:60]))
    server.route("/story/late", lambda r: (200, {"Content-Type": "text/html"}, ARTICLE.replace("Monday", "Friday").encode()))
    feeds = write_feeds(tmp_path / "feeds.yaml", {n: server.url(f"/{n}.xml") for n in ("feed", "late", "html", "truncated")})
    outcomes = []
    for processes in (1, 2):
        settings = make_settings(tmp_path / str(processes), f"sqlite:///{tmp_path / f'{processes}.db'}", feeds, extract_processes=processes)
        totals = run(settings)
        rows = feed_rows(settings)
        outcomes.append((totals["feeds_fetched"], totals["feeds_failed"], totals["entries_new"], totals["articles_stored"],
                         {n: (f.title, f.last_error, f.error_count) for n, f in rows.items()}))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][:4] == (2, 2, 22, 21)
    assert "not a feed" in (outcomes[1][4]["html"][1] or "") and "not a feed" in (outcomes[1][4]["truncated"][1] or "")


def test_an_extraction_process_that_dies_fails_only_the_pages_in_it(server: LocalServer, tmp_path: Path) -> None:
    """A process killed mid-batch (the out-of-memory killer, a crash in lxml) broke the pool, and
    every later page failed the whole batch, on every retry. Now fresh processes take over, the
    pages that were in the dead pool fail with attempts left, and the next run extracts them."""
    import os
    import signal
    import time

    import psutil

    killed = []

    def kill_extraction_processes(request: Request) -> tuple[int, dict[str, str], bytes]:
        if not killed:  # the extraction processes are the forkserver's children, our grandchildren
            deadline = time.monotonic() + 10
            while not killed and time.monotonic() < deadline:
                killed.extend(p for p in psutil.Process().children(recursive=True) if p.ppid() != os.getpid())
                time.sleep(0.05)
            for process in killed:
                process.send_signal(signal.SIGKILL)
        return 200, {"Content-Type": "text/html"}, ARTICLE.replace("Monday", "Sunday").encode()

    paths = serve_stories(server, 20)
    server.route("/story/killer", kill_extraction_processes)
    server.route("/feed.xml", lambda r: (200, {"Content-Type": "application/rss+xml"}, rss(server, "/story/killer", *paths)))
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'news.db'}", write_feeds(tmp_path / "feeds.yaml", {"local": server.url("/feed.xml")}),
                             extract_processes=2)

    first = run(settings)
    assert killed, "the extraction processes were found and killed"
    lost = {k: a for k, a in article_rows(settings).items() if a.status != ArticleStatus.extracted and a.status != ArticleStatus.stored}
    assert lost and first["pages_fetched"] + first["pages_failed"] == 21 and first["pages_fetched"] == 21 - len(lost)
    assert all(a.status == ArticleStatus.failed and "extraction process died" in (a.error or "") for a in lost.values())

    second = run(settings)
    assert second["pages_fetched"] == len(lost)
    assert {a.status for a in article_rows(settings).values()} == {ArticleStatus.stored}


def test_extraction_processes_leave_when_the_process_they_work_for_is_killed(tmp_path: Path) -> None:
    """A pass killed outright (SIGKILL, an out-of-memory kill) must not leave its extraction
    processes running: they waited on their job queue for good, about 100 MB each."""
    import subprocess
    import sys
    import time

    import psutil

    script = (
        "import os, pathlib, signal, sys\n"
        "from ingest.process_pool import process_pool\n"
        "pool = process_pool(2)\n"
        "pids = {pool.submit(os.getpid).result() for _ in range(16)}\n"
        "pathlib.Path(sys.argv[1]).write_text(' '.join(map(str, pids)))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    pids, errors = tmp_path / "pids", tmp_path / "errors"
    with errors.open("w") as stderr:  # not a pipe: the workers would hold it open
        code = subprocess.run([sys.executable, "-c", script, str(pids)], stdout=subprocess.DEVNULL, stderr=stderr, timeout=120).returncode
    assert code == -9 and pids.exists(), errors.read_text()
    workers = [int(pid) for pid in pids.read_text().split()]

    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 10
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers and not [pid for pid in workers if running(pid)], "extraction processes outlived the pass"
