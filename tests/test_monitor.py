"""The monitoring page and ``ingest stats``: standalone, and mounted in Airflow's API server behind its login."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from ingest.cli import main
from ingest.db import open_store, transaction
from ingest.models import Article, Feed
from ingest.monitor import create_app, web_link
from ingest.sample_site import SampleSite

HOSTILE = '<script>alert("owned")</script>'


@pytest.fixture(scope="module")
def store(sample_site: SampleSite, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample site ingested twice, with one article's title and one feed's error made hostile."""
    tmp = tmp_path_factory.mktemp("monitor")
    url = f"sqlite:///{tmp / 'news.db'}"
    feeds = sample_site.write_feeds_file(tmp / "feeds.yaml")
    env = {"INGEST_ALLOW_PRIVATE_NETWORKS": "1", "INGEST_RAW_STORE": str(tmp / "raw")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for _ in range(2):
            assert main(["run", "--feeds", str(feeds), "--db", url]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    with transaction(open_store(url)) as session:
        first = session.query(Article).filter(Article.duplicate_of_id.is_(None)).order_by(Article.id).first()
        assert first is not None
        first.title = f"Hostile {HOSTILE}"
        first.url = "javascript:alert(1)"
        session.execute(update(Feed).where(Feed.name == "metro-wire").values(last_error=HOSTILE, error_count=2))
    return url


def test_page_shows_feeds_runs_clusters_and_escapes_web_text(store: str, sample_site: SampleSite) -> None:
    client = TestClient(create_app(store))
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    for feed in ("harbor-daily", "metro-wire", "seoul-ilbo", "valley-post"):
        assert feed in html
    assert "<polyline" in html  # the runs chart
    assert "Delta Reach levees" in html and "Harbor Daily" in html and "The Valley Post" in html  # the syndicated story's cluster
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script runs at all


def test_search_and_json_api(store: str) -> None:
    client = TestClient(create_app(store))
    page = client.get("/", params={"q": "levees Delta"})
    assert page.status_code == 200 and 'id="hits"' in page.text and "(copy)" in page.text
    hits = client.get("/api/search", params={"q": "levees"}).json()
    assert hits and all("levee" in (h["snippet"] + (h["article"]["title"] or "")).lower() for h in hits)
    assert client.get("/api/search", params={"q": "100%_"}).json() == []  # LIKE wildcards are literal
    clusters = client.get("/api/clusters").json()
    assert clusters[0]["copies"] and clusters[0]["copies"][0]["similarity"] > 0.5
    runs = client.get("/api/runs").json()
    assert [r["counts"]["articles_new"] > 0 for r in runs] == [True, False]  # the second run found nothing new
    feeds = {f["name"]: f for f in client.get("/api/feeds").json()}
    assert feeds["harbor-daily"]["not_modified_share"] == 0.5 and feeds["metro-wire"]["error_count"] == 2


def test_web_link_keeps_only_http() -> None:
    assert web_link("https://example.com/a") == "https://example.com/a"
    assert web_link("JavaScript:alert(1)") == "#"
    assert web_link("data:text/html,x") == "#" and web_link(None) == "#"


def test_stats_command(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--db", store, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["feeds"]) == 4 and len(report["runs"]) == 2 and report["clusters"]
    assert main(["stats", "--db", store]) == 0
    assert "valley-post" in capsys.readouterr().out


@pytest.mark.slow
def test_airflow_mounts_the_monitor_behind_its_login(store: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin in Airflow's own API server: no token, no page; a user's token or cookie, the page."""
    from airflow.api_fastapi.app import create_app as airflow_app

    monkeypatch.setenv("INGEST_DB_URL", store)
    client = TestClient(airflow_app())
    assert client.get("/news-monitor/").status_code == 401
    assert client.get("/news-monitor/api/feeds").status_code == 401
    passwords = Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    token = client.post("/auth/token", json={"username": "admin", "password": json.loads(passwords.read_text())["admin"]})
    assert token.status_code == 201
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    page = client.get("/news-monitor/", headers=bearer)
    assert page.status_code == 200 and "Delta Reach levees" in page.text
    plugins = client.get("/api/v2/plugins", headers=bearer).json()["plugins"]
    view = next(p for p in plugins if p["name"] == "news_monitor")["external_views"][0]
    assert view["href"] == "news-monitor/" and view["destination"] == "nav"
    client.cookies.set("_token", token.json()["access_token"])  # what the UI's iframe sends
    assert client.get("/news-monitor/api/feeds").status_code == 200
