"""The monitoring page: feed health, runs over time, duplicate clusters and search.

A plain FastAPI app with no Airflow imports: ``dags/plugins/news_monitor.py``
mounts it in the Airflow API server behind Airflow's own authentication (plugin
routes are open by default), and ``create_app()`` runs it anywhere else. Pages are
rendered on the server with Jinja2 autoescaping: titles and URLs come from the
open web and are attacker-controlled text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from urllib.parse import urlsplit

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ingest.db import open_store
from ingest.settings import Settings
from ingest.stats import RUN_SERIES, RunPoint, clusters, feed_health, runs, search

_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
# No scripts at all, and only this page's own origin may frame it (the Airflow UI).
_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'"


def web_link(url: str | None) -> str:
    """An href for a URL from the web: http(s) only, so a ``javascript:`` link never renders."""
    return url if url and urlsplit(url).scheme.lower() in ("http", "https") else "#"


_TEMPLATES.env.filters["web_link"] = web_link
_COLORS = {"articles_new": "#2563eb", "articles_stored": "#16a34a", "duplicate_articles": "#d97706",
           "duplicate_passages": "#7c3aed", "failures": "#dc2626"}
_WIDTH, _HEIGHT = 640, 180


def chart(points: list[RunPoint]) -> dict[str, Any]:
    """Polylines (SVG coordinates) for each series over the runs."""
    top = max([p.counts.get(name, 0) for p in points for name in RUN_SERIES] + [1])
    step = _WIDTH / max(len(points) - 1, 1)
    lines = []
    for name in RUN_SERIES:
        xy = [(i * step, _HEIGHT - p.counts.get(name, 0) / top * _HEIGHT) for i, p in enumerate(points)]
        lines.append({"name": name.replace("_", " "), "color": _COLORS[name], "xy": xy,
                      "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)})
    return {"width": _WIDTH, "height": _HEIGHT, "top": top, "lines": lines}


def create_app(db_url: str | None = None, dependencies: Sequence[Any] = ()) -> FastAPI:
    """The monitor for the store at ``db_url`` (default: INGEST_DB_URL); ``dependencies``
    guard every route (the Airflow plugin passes Airflow's user check)."""
    app = FastAPI(title="news-ingest monitor", dependencies=list(dependencies), docs_url=None, redoc_url=None)

    def engine():  # type: ignore[no-untyped-def]
        return open_store(db_url or Settings().db_url)

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request, q: str = Query("", max_length=200)) -> Response:
        history = runs(engine())
        context = {
            "feeds": feed_health(engine()),
            "runs": history,
            "chart": chart(history),
            "clusters": clusters(engine()),
            "query": q,
            "hits": search(engine(), q) if q.strip() else None,
        }
        response: Response = _TEMPLATES.TemplateResponse(request, "monitor.html", context)
        response.headers["Content-Security-Policy"] = _CSP
        return response

    @app.get("/api/feeds")
    def api_feeds() -> list[dict[str, Any]]:
        return [asdict(f) for f in feed_health(engine())]

    @app.get("/api/runs")
    def api_runs(limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        return [asdict(r) for r in runs(engine(), limit)]

    @app.get("/api/clusters")
    def api_clusters(limit: int = Query(20, ge=1, le=200)) -> list[dict[str, Any]]:
        return [asdict(c) for c in clusters(engine(), limit)]

    @app.get("/api/search")
    def api_search(q: str = Query(..., min_length=1, max_length=200)) -> list[dict[str, Any]]:
        return [asdict(h) for h in search(engine(), q)]

    return app
