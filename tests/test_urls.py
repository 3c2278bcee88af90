from __future__ import annotations

import pytest

from ingest.urls import canonicalize_url


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("https://News.Example.com/a?utm_source=rss&utm_medium=feed", "https://news.example.com/a"),
        ("https://example.com/a?id=7&fbclid=abc123&gclid=x&mc_eid=1", "https://example.com/a?id=7"),
        ("http://example.com:80/a//b#comments", "http://example.com/a/b"),
        ("https://example.com:8443/a?utm_campaign=x", "https://example.com:8443/a"),
        # meaningful parameters stay, in order and byte for byte
        ("https://example.com/news/articleView.html?idxno=20417&utm_source=x", "https://example.com/news/articleView.html?idxno=20417"),
        ("https://example.com/gallery?cid=3&gallery=9&q=a%20b", "https://example.com/gallery?cid=3&gallery=9&q=a%20b"),
        ("https://example.com", "https://example.com/"),
        ("https://[2001:db8::1]:8080/x?UTM_SOURCE=a", "https://[2001:db8::1]:8080/x"),
    ],
)
def test_canonicalize_url(raw: str, canonical: str) -> None:
    assert canonicalize_url(raw) == canonical


def test_two_tracking_links_are_one_url() -> None:
    a = "http://127.0.0.1:8765/harbor-daily/2025/06/17/story/?utm_source=rss&utm_medium=feed&utm_campaign=morning"
    b = "http://127.0.0.1:8765/harbor-daily/2025/06/17/story/?utm_source=metrowire&fbclid=abc123"
    assert canonicalize_url(a) == canonicalize_url(b)
