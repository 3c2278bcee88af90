"""Attacks through feeds, end to end through a pipeline pass with private networks NOT allowed.

The hostile feed is served from a loopback server that stands for a public site: it is
the fetcher's one trusted endpoint (the narrow opening ``Fetcher(trusted_endpoints=…)``
exists for), and a resolver gives two made-up public-looking names their answers.
Everything the feed points at must be refused, with the reason on record, while the
good article beside it is stored. Where a target is on loopback a second server
listens there, so "refused" is checked as "no request ever reached it".
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import socket
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest.http import Fetcher
from ingest.models import ArticleStatus
from ingest.settings import HttpSettings
from ingest.urls import canonicalize_url
from tests.local_http import LocalServer
from tests.reliability import figures
from tests.reliability.fault_site import HTML, RSS, article_html, reply, rss
from tests.reliability.passes import Snapshot, environment, ingest, pass_settings, short, snapshot
from tests.test_dag import dag, form  # noqa: F401 - the DAG fixture
from tests.test_failures import run

pytestmark = pytest.mark.timeout(120)

REFUSED = r"is not a public address"
TARGETS = [  # (attack, host[:port] as written in the link; {port} is the listening target's)
    ("127.0.0.1", "127.0.0.1:{port}"),
    ("localhost", "localhost:{port}"),
    ("10/8", "10.0.0.1:{port}"),
    ("172.16/12", "172.16.0.1:{port}"),
    ("192.168/16", "192.168.1.1:{port}"),
    ("169.254.169.254 (cloud metadata)", "169.254.169.254"),
    ("100.64/10 (carrier-grade NAT)", "100.64.0.1:{port}"),
    ("0.0.0.0", "0.0.0.0:{port}"),
    ("[::1]", "[::1]:{port}"),
    ("[::ffff:127.0.0.1] (IPv4-mapped)", "[::ffff:127.0.0.1]:{port}"),
    ("decimal 2130706433", "2130706433:{port}"),
    ("octal 017700000001", "017700000001:{port}"),
    ("hex 0x7f.1", "0x7f.1:{port}"),
    ("hex 0x7f000001", "0x7f000001:{port}"),
    ("short 127.1", "127.1:{port}"),
    ("public-looking name resolving to 127.0.0.1", "intranet.news.example:{port}"),
    ("name resolving to a public address and 127.0.0.1", "mixed.news.example:{port}"),
]
LOOPBACK = {"127.0.0.1", "localhost", "0.0.0.0", "[::ffff:127.0.0.1] (IPv4-mapped)", "decimal 2130706433", "octal 017700000001",
            "hex 0x7f.1", "hex 0x7f000001", "short 127.1", "public-looking name resolving to 127.0.0.1"}
"""Forms that reach the listening target when private networks are allowed (checked below)."""
DNS = {"intranet.news.example": ["127.0.0.1"], "mixed.news.example": ["93.184.215.14", "127.0.0.1"]}


async def _resolve(host: str, port: int) -> list[str]:
    """The made-up names from ``DNS``; every other name from the system resolver."""
    if host in DNS:
        return DNS[host]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# --- files: an audit hook sees every open() and urlopen() in this process ------------------

_WATCHED: set[str] = set()
_OPENED: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCHED or event not in ("open", "urllib.Request"):
        return
    target = args[0] if args else None
    if isinstance(target, (str, bytes, os.PathLike)):
        name = os.fsdecode(target)
        if any(watched in name for watched in _WATCHED):
            _OPENED.append(name)


sys.addaudithook(_audit)  # hooks cannot be removed; this one does nothing while nothing is watched


@dataclass(frozen=True)
class HostileSite:
    site: LocalServer
    target: LocalServer
    links: dict[str, tuple[str, str]]
    """Attack → (the link as written, the redirect on the trusted site that leads there)."""
    path_feeds: dict[str, str]
    """Feed name → the path its body names."""
    path_pages: dict[str, str]
    """Page path on the site → the file path its body names."""
    sentinel_words: str
    opened: list[str]
    """Watched files opened (or URLs opened) during the pass."""
    reached: list[str]
    """Paths the listening target was asked for during the pass."""
    snap: Snapshot


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileSite]:
    """One pass over a hostile feed, feeds whose bodies name local files, and a feed that
    redirects to the cloud metadata address; private networks are not allowed."""
    tmp = tmp_path_factory.mktemp("hostile")
    with LocalServer() as site, LocalServer() as target:
        links: dict[str, tuple[str, str]] = {}
        for n, (attack, host) in enumerate(TARGETS):
            link = f"http://{host.format(port=target.port)}/secret/{n}"
            site.route(f"/r/{n}", reply(302, b"", Location=link))
            links[attack] = (link, site.url(f"/r/{n}"))
            target.route(f"/secret/{n}", reply(200, article_html(f"/secret/{n}").encode(), HTML))
        site.route("/good", reply(200, article_html("/good").encode(), HTML))
        site.route("/hostile.xml", reply(200, rss([site.url("/good"), *(url for pair in links.values() for url in pair)]), RSS))
        site.route("/moved.xml", reply(301, b"", Location="http://169.254.169.254/latest/meta-data/"))

        # A local feed and a local page that must never be read, however a body names them.
        sentinel_words = f"sentinel {uuid.uuid4().hex}"
        local_feed, local_page = tmp / "local-feed.xml", tmp / "local-page.html"
        local_feed.write_bytes(rss([site.url("/read-from-a-local-file")]))
        local_page.write_text(article_html("/local").replace("<h1>", f"<p>{sentinel_words}</p><h1>"), encoding="utf-8")
        path_feeds = {
            "path-etc-passwd": "/etc/passwd", "path-file-url": "file:///etc/passwd", "path-dev-zero": "/dev/zero",
            "path-local-feed": str(local_feed), "path-local-feed-url": local_feed.as_uri(),
        }
        for name, body in path_feeds.items():
            site.route(f"/{name}.xml", reply(200, body.encode(), RSS))
        path_pages = {"/page-naming-a-file": str(local_page), "/page-naming-a-file-url": local_page.as_uri()}
        for path, body in path_pages.items():
            site.route(path, reply(200, body.encode(), HTML))
        site.route("/pages.xml", reply(200, rss([site.url(p) for p in [*path_pages, "/good"]]), RSS))

        feeds = {"hostile": site.url("/hostile.xml"), "moved-to-metadata": site.url("/moved.xml"), "pages-naming-files": site.url("/pages.xml")}
        feeds.update({name: site.url(f"/{name}.xml") for name in path_feeds})
        settings = pass_settings(tmp, f"sqlite:///{tmp / 'news.db'}", feeds).model_copy(update={"allow_private_networks": False})
        guarded = functools.partial(Fetcher, resolver=_resolve, trusted_endpoints=[site.endpoint])
        _WATCHED.update(["/etc/passwd", "/dev/zero", str(local_feed), str(local_page)])
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("ingest.batch.Fetcher", guarded)
                run(settings)
        finally:
            _WATCHED.clear()
        yield HostileSite(
            site, target, links, path_feeds, path_pages, sentinel_words, list(_OPENED), target.paths(), snapshot(settings.db_url)
        )


def test_the_loopback_forms_do_reach_the_target_when_private_networks_are_allowed(hostile: HostileSite) -> None:
    """The control: without it, "no request reached the target" could mean a wrong port."""

    async def fetch_all() -> list[int | None]:
        async with Fetcher(HttpSettings(retries=0), allow_private_networks=True, resolver=_resolve) as fetcher:
            return [(await fetcher.fetch(hostile.links[attack][0])).status for attack in sorted(LOOPBACK)]

    before = len(hostile.target.requests)
    assert asyncio.run(fetch_all()) == [200] * len(LOOPBACK)
    assert len(hostile.target.requests) - before == len(LOOPBACK)


@pytest.mark.parametrize("attack", [attack for attack, _ in TARGETS])
def test_private_targets_are_refused_as_links_and_redirects(attack: str, hostile: HostileSite) -> None:
    snap = hostile.snap
    direct, redirect = hostile.links[attack]
    reasons = []
    for url in (direct, redirect):
        article = snap.articles[canonicalize_url(url)]
        assert article.status == ArticleStatus.skipped and article.error and re.search(REFUSED, article.error), (url, article)
        reasons.append(article.error)
    assert hostile.reached == [], "no request reached the listening target"
    assert snap.articles[hostile.site.url("/good")].status == ArticleStatus.stored
    reached = "no: 0 requests at the listening target" if attack in LOOPBACK else "no: refused before connecting"
    written = direct.replace(f":{hostile.target.port}/", ":PORT/")
    figures.record("attacks", f"{attack}: `{written}`", "article link; 302 from the trusted site", reached, "stored",
                   short(reasons[1], 100))


def test_a_feed_redirected_to_the_metadata_address_is_refused(hostile: HostileSite) -> None:
    error = hostile.snap.feeds["moved-to-metadata"].last_error
    assert error and re.search(REFUSED, error) and "169.254.169.254" in error
    figures.record("attacks", "feed URL answering 301 → `http://169.254.169.254/latest/meta-data/`", "the feed itself",
                   "no: refused before connecting", "stored", short(error, 100))


@pytest.mark.parametrize("name", ["path-etc-passwd", "path-file-url", "path-dev-zero", "path-local-feed", "path-local-feed-url"])
def test_feed_bodies_naming_files_are_parsed_as_broken_feeds_never_opened(name: str, hostile: HostileSite) -> None:
    """feedparser opens a path or URL handed to it as a string: the body must reach it as bytes."""
    error = hostile.snap.feeds[name].last_error
    assert error and error.startswith("not a feed"), (name, error)
    assert not any("read-from-a-local-file" in url for url in hostile.snap.articles)
    assert hostile.opened == [], f"files opened during the pass: {hostile.opened}"
    figures.record("attacks", f"feed body `{_tmp_named(hostile.path_feeds[name])}`", "the whole feed body",
                   "no: the file was never opened", "stored", short(error, 100))


@pytest.mark.parametrize("path", ["/page-naming-a-file", "/page-naming-a-file-url"])
def test_page_bodies_naming_files_are_extracted_as_text_never_opened(path: str, hostile: HostileSite) -> None:
    article = hostile.snap.articles[hostile.site.url(path)]
    assert article.status == ArticleStatus.skipped and article.error == "no article text found on the page"
    assert not any(hostile.sentinel_words in a.text for a in hostile.snap.articles.values())
    assert hostile.opened == []
    figures.record("attacks", f"page body `{_tmp_named(hostile.path_pages[path])}`", "an article page (text/html)",
                   "no: the file was never opened", "stored", article.error)


def _tmp_named(path: str) -> str:
    """A temporary file's path, without the random part, for the figures."""
    return re.sub(r"/tmp/\S*/(local-[\w.-]+)", r"<tmp>/\1", path)


# --- secrets -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
def test_database_passwords_never_appear_in_output_or_exports(pg_url: str, tmp_path: Path) -> None:
    """`ingest` commands against PostgreSQL URLs holding a password: connections that fail
    (unknown database, closed port, unknown driver), then a pass that succeeds, export and
    stats. The password must not appear anywhere they print, logs at INFO included."""
    password = f"pw-{uuid.uuid4().hex}"
    with LocalServer() as site:
        site.route("/good", reply(200, article_html("/good").encode(), HTML))
        site.route("/feed.xml", reply(200, rss([site.url("/good")]), RSS))
        settings = pass_settings(tmp_path, pg_url, {"news": site.url("/feed.xml")})
        with_password = pg_url.replace("://postgres@", f"://postgres:{password}@")
        assert password in with_password
        base = environment(settings)
        failing = [  # a pass, and the reading commands, each with a URL that cannot work
            (["-v", "run"], "unknown database", with_password.rsplit("/", 1)[0] + "/no_such_database"),
            (["stats"], "closed port", with_password.replace(":5432/", ":1/")),
            (["export"], "unknown driver", with_password.replace("+psycopg", "+nosuchdriver")),
        ]
        outputs = {}
        for args, why, url in failing:
            result = ingest(args, settings, env={**base, "INGEST_DB_URL": url})
            assert result.returncode == 2, (why, result.output)
            assert "postgres:***@" in result.output, (why, result.output)
            outputs[f"`ingest {' '.join(args)}` ({why})"] = result.output
        good_env = {**base, "INGEST_DB_URL": with_password}
        for args in (["-v", "run"], ["export"], ["stats"], ["stats", "--json"]):
            result = ingest(args, settings, env=good_env)
            assert result.returncode == 0, (args, result.output)
            outputs[f"`ingest {' '.join(args)}`"] = result.output
    assert '"url": ' in outputs["`ingest export`"], "the export holds the stored article"
    leaks = [where for where, output in outputs.items() if password in output]
    assert leaks == [], f"the password appears in: {leaks}"
    lines = sum(len(output.splitlines()) for output in outputs.values())
    figures.record(
        "attacks", "PostgreSQL password in `INGEST_DB_URL`", "; ".join(outputs),
        f"no: in none of {lines} lines of output (stdout, stderr, INFO logs, the export)", "stored",
        "failing URLs are shown as `postgres:***@…`",
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_the_dag_keeps_database_passwords_out_of_task_logs_and_xcom(
    dag: Any, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Through Airflow (`dag.test()`): a run whose store cannot be reached, then one that works.
    The workers read the URL from their environment (no Airflow Connection holds it); what
    the tasks log, return through XCom or keep as the run's conf must not hold the password."""
    password = f"pw-{uuid.uuid4().hex}"
    with_password = pg_url.replace("://postgres@", f"://postgres:{password}@")
    caplog.set_level("INFO")
    with LocalServer() as site:
        site.route("/good", reply(200, article_html("/good").encode(), HTML))
        site.route("/feed.xml", reply(200, rss([site.url("/good")]), RSS))
        settings = pass_settings(tmp_path, with_password, {"news": site.url("/feed.xml")})
        for name, value in environment(settings).items():
            if name.startswith("INGEST_"):
                monkeypatch.setenv(name, value)
        for task in dag.tasks:  # the failing run fails for good: no retries, which really sleep
            monkeypatch.setattr(task, "retries", 0)
        monkeypatch.setenv("INGEST_DB_URL", with_password.rsplit("/", 1)[0] + "/no_such_database")
        failed = dag.test(run_conf=form())
        monkeypatch.setenv("INGEST_DB_URL", with_password)
        worked = dag.test(run_conf=form())
    assert (failed.state, worked.state) == ("failed", "success")
    printed = "".join(capfd.readouterr())
    assert "postgres:***@" in caplog.text + printed, "the failing task names the database it could not reach, masked"
    xcoms = [ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index) for run_ in (failed, worked) for ti in run_.get_task_instances()]
    assert worked.get_task_instance("summarize").xcom_pull(task_ids="summarize")["articles_stored"] == 1
    seen = {"task logs": caplog.text, "stdout and stderr": printed, "XCom": repr(xcoms), "run conf": repr([failed.conf, worked.conf])}
    leaks = [where for where, text in seen.items() if password in text]
    assert leaks == [], f"the password appears in: {leaks}"
    figures.record(
        "attacks", "PostgreSQL password in the Airflow workers' `INGEST_DB_URL`",
        "`dag.test()`: a run whose database does not exist, then one that works", "no: in none of "
        + ", ".join(seen), "stored", "the failing task names the URL as `postgres:***@…`",
    )
