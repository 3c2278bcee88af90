"""One template module per outlet, keyed by outlet id.

Each module has ``page(site, article, base) -> str`` and
``boilerplate(site, article) -> list[str]``: the strings come from the same
code that places them, so the ground truth cannot drift from the markup.
"""

from __future__ import annotations

from typing import Protocol

from ingest.sample_site.content import Article, Site
from ingest.sample_site.outlets import harbor_daily, metro_wire, seoul_ilbo, valley_post


class Template(Protocol):
    def page(self, site: Site, article: Article, base: str) -> str: ...

    def boilerplate(self, site: Site, article: Article) -> list[str]: ...


TEMPLATES: dict[str, Template] = {
    "harbor-daily": harbor_daily,
    "valley-post": valley_post,
    "metro-wire": metro_wire,
    "seoul-ilbo": seoul_ilbo,
}
