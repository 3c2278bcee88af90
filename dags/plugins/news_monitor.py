"""Airflow UI plugin: the news-ingest monitor as a page under Browse.

Plugin routes are not behind Airflow's authentication, so every route requires
the caller to be allowed to read the news_ingest DAG, checked by Airflow's own
auth manager (cookie or bearer token). The app itself lives in ``ingest.monitor``.
"""

from __future__ import annotations

from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends

from ingest.monitor import create_app

PREFIX = "/news-monitor"


class NewsMonitorPlugin(AirflowPlugin):
    name = "news_monitor"
    fastapi_apps = [
        {
            "app": create_app(dependencies=[Depends(requires_access_dag("GET", param_dag_id="news_ingest"))]),
            "url_prefix": PREFIX,
            "name": "News ingest monitor",
        }
    ]
    external_views = [
        {
            "name": "News monitor",
            "href": f"{PREFIX.lstrip('/')}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "news-monitor",
        }
    ]
