"""End to end against a real ``airflow standalone``: backfills through the REST API run by the
real scheduler, and the monitoring page in headless Chromium behind Airflow's login."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from ingest.sample_site import SampleSite, load_articles
from ingest.local_airflow import AirflowServer, airflow_standalone, finished, trigger, wait_for
from tests.conftest import pg_databases
from tests.test_pipeline import exported, table_counts

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAYS = [datetime(2025, 6, d, tzinfo=timezone.utc) for d in (17, 18, 19)]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("standalone")


@pytest.fixture(scope="module")
def airflow(sample_site: SampleSite, store: Path, pg_server: str) -> Iterator[AirflowServer]:
    env = {
        "INGEST_FEEDS_FILE": str(sample_site.write_feeds_file(store / "feeds.yaml")),
        "INGEST_DB_URL": f"sqlite:///{store / 'news.db'}",
        "INGEST_RAW_STORE": str(store / "raw"),
        "INGEST_ALLOW_PRIVATE_NETWORKS": "1",
        "INGEST_SCHEDULE": "0 0 * * *",  # daily intervals: a three-day backfill is three runs
    }
    with pg_databases(pg_server, "airflow") as (metadata,), airflow_standalone(store / "airflow", env, metadata) as server:
        yield server


def backfill(client: httpx.Client, reprocess: str, log: Path) -> list[dict]:  # type: ignore[type-arg]
    """Create a backfill over DAYS and wait until the scheduler has run all of it."""
    created = client.post("/api/v2/backfills", json={
        "dag_id": "news_ingest", "from_date": DAYS[0].isoformat(), "to_date": DAYS[-1].isoformat(),
        "reprocess_behavior": reprocess, "max_active_runs": 1,
    })
    assert created.status_code == 200, created.text
    backfill_id = created.json()["id"]

    def completed() -> list[dict] | None:  # type: ignore[type-arg]
        if client.get(f"/api/v2/backfills/{backfill_id}").json()["completed_at"] is None:
            return None
        runs = client.get("/api/v2/dags/news_ingest/dagRuns", params={"run_type": "backfill", "order_by": "logical_date"}).json()
        return runs["dag_runs"]

    return wait_for(completed, 900, f"backfill {backfill_id}", log)  # type: ignore[no-any-return]


def test_backfills_run_each_interval_and_a_second_changes_nothing(
    airflow: AirflowServer, sample_site: SampleSite, store: Path
) -> None:
    db_url = f"sqlite:///{store / 'news.db'}"
    with airflow.client() as client:
        runs = backfill(client, "none", airflow.log)
        assert [r["state"] for r in runs] == ["success"] * 3
        assert [r["data_interval_start"] for r in runs] == [d.isoformat().replace("+00:00", "Z") for d in DAYS]
        stored = {r["url"] for r in exported(db_url)}
        in_window = {a.url for a in load_articles(sample_site.base_url) if DAYS[0] <= a.published < DAYS[-1] + timedelta(days=1)}
        assert stored == in_window, "each run took the articles its day's sitemaps list, nothing else"
        before = table_counts(db_url), exported(db_url)

        again = backfill(client, "completed", airflow.log)  # re-run the completed intervals
        assert [r["state"] for r in again] == ["success"] * 3
        assert all(r["end_date"] > runs[-1]["end_date"] for r in again), "the intervals really ran again"
        assert (table_counts(db_url), exported(db_url)) == before
        summaries = client.get("/news-monitor/api/runs").json()
        assert [s["run_id"] for s in summaries] == [r["dag_run_id"] for r in runs], "a re-run replaces its summary"
        assert all(s["counts"]["articles_new"] == 0 and s["counts"]["sitemaps_fetched"] == 4 for s in summaries)
        events = client.get("/api/v2/assets/events", params={"source_dag_id": "news_ingest"}).json()["asset_events"]
        assert len(events) == 6 and {"articles_stored", "duplicate_articles"} <= set(events[0]["extra"])


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_the_monitor_in_chromium_behind_the_login(airflow: AirflowServer) -> None:
    from playwright.sync_api import sync_playwright

    with airflow.client() as client:  # something to show: one run of the whole site
        finished(client, trigger(client, {}), airflow.log, timeout=300)
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        refused = page.goto(f"{airflow.url}/news-monitor/")
        assert refused is not None and refused.status == 401, "no login, no page"

        page.goto(f"{airflow.url}/auth/login?next={airflow.url}/plugin/news-monitor")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(airflow.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/plugin/news-monitor**", timeout=60_000)
        monitor = page.frame_locator("iframe")
        feeds = monitor.locator("#feeds").inner_text(timeout=60_000)
        for name in ("harbor-daily", "valley-post", "metro-wire", "seoul-ilbo"):
            assert name in feeds
        clusters = monitor.locator("#clusters").inner_text()
        assert "Delta Reach levees" in clusters and "The Valley Post" in clusters
        assert monitor.locator("#runs-chart circle").count() > 0
        time.sleep(1)  # let the chart and fonts settle for the picture
        page.screenshot(path=str(SCREENSHOTS / "monitor.png"), full_page=True)

        page.goto(f"{airflow.url}/news-monitor/?q=levees")
        assert "(copy)" in page.locator("#hits").inner_text()
        browser.close()
    assert (SCREENSHOTS / "monitor.png").stat().st_size > 10_000
