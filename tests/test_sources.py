from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import UserError
from ingest.sources import load_feeds


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_feeds_file_with_per_feed_settings(tmp_path: Path) -> None:
    feeds = load_feeds(
        write(
            tmp_path,
            "feeds:\n  - name: a\n    url: https://a.example/feed\n"
            "  - name: b\n    url: https://b.example/atom.xml\n    respect_robots: false\n"
            "  - name: c\n    url: https://c.example/rss\n    enabled: false\n",
        )
    )
    assert [(f.name, f.respect_robots) for f in feeds] == [("a", True), ("b", False)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feeds: [", "not valid YAML at line"),
        ("- just a list", "must be a mapping"),
        ("feeds:\n  - name: a\n    url: ftp://a.example/feed\n", r"not an http\(s\) URL"),
        ("feeds:\n  - name: a\n    url: https://a/x\n  - name: a\n    url: https://b/x\n", "appears twice"),
        ("feeds:\n  - name: a\n    url: https://a/x\n    colour: red\n", "feeds.0.colour"),
        ("feeds:\n  - url: https://a/x\n", "feeds.0.name"),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_feeds(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="feeds file not found"):
        load_feeds(tmp_path / "nope.yaml")
