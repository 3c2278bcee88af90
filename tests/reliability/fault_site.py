"""A fault-injecting news site on loopback, built on ``tests/local_http.LocalServer``.

Each fault gets feeds of its own, and every feed that lists article pages lists a
good page beside the broken ones; the site also has a feed of good articles only.
So after any pipeline pass a test can check the same three things for every fault:
the good pages were all stored, each failure is on record with its reason, and
nothing was stored twice.

``build(site)`` installs every fault in ``FAULTS`` and returns what each is
expected to leave behind (a ``Fault``); a test that needs only some of them passes
their keys. The article texts are random word salad from a fixed seed per page, so
no two pages are near-duplicates of each other and the deduplicator links nothing.
"""

from __future__ import annotations

import itertools
import random
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from tests.local_http import Body, Handler, Headers, LocalServer, Request

MiB = 1 << 20
_WORDS = (
    "harbor council budget ferry school road repair winter summer market river bridge station library museum "
    "teacher doctor nurse farmer driver student engineer mayor judge police storm flood harvest festival election "
    "contract tender hospital clinic airport railway tunnel factory union strike wage price tax fund grant "
    "village district county province border coast island valley mountain forest park garden stadium theatre "
    "approved rejected delayed announced opened closed signed reviewed planned expected reported measured "
    "quickly slowly again later today yesterday morning evening after before during because although while "
    "new old large small local regional national public private early late second third final annual"
).split()
HTML = "text/html; charset=utf-8"
RSS = "application/rss+xml"
ACCENTED = ("café", "Zürich", "naïve", "très", "l’hiver")
"""Words whose letters are lost when a page's charset is misread."""


def article_html(slug: str, *, extra: Sequence[str] = ()) -> str:
    """A news page with three paragraphs of 45 words, unique to ``slug``; the ``extra``
    words go into the last one, at random places."""
    rng = random.Random(slug)
    paragraphs = [[rng.choice(_WORDS) for _ in range(45)] for _ in range(3)]
    for word in extra:
        paragraphs[-1].insert(rng.randrange(len(paragraphs[-1])), word)
    body = "".join(f"<p>{words[0].capitalize()} {' '.join(words[1:])}.</p>" for words in paragraphs)
    return (
        f"<html lang='en'><head><title>Story {slug}</title></head>"
        f"<body><article><h1>Story {slug}</h1>{body}</article></body></html>"
    )


def rss(links: Sequence[str], *, title: str = "News", item_title: str = "Item") -> bytes:
    """An RSS 2.0 feed listing ``links`` (absolute or site-relative), guid = link."""
    items = "".join(
        f"<item><title>{item_title} {n}</title><link>{link}</link><guid>{link}</guid></item>" for n, link in enumerate(links)
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>{items}</channel></rss>'.encode()


def reply(status: int, body: Body = b"", content_type: str | None = None, **headers: str) -> Handler:
    """A handler that always answers the same; header names use ``_`` for ``-``."""
    fields = {name.replace("_", "-"): value for name, value in headers.items()}
    if content_type:
        fields["Content-Type"] = content_type
    return lambda _request: (status, fields, body)


def in_turn(*handlers: Handler) -> Handler:
    """The first request gets the first handler's answer, and so on; the last one repeats."""
    calls = itertools.count()
    return lambda request: handlers[min(next(calls), len(handlers) - 1)](request)


def drip(body: bytes, every: float = 0.25) -> Iterator[bytes | float]:
    """One byte, a pause, one byte…: each read comes in time, the whole body never does."""
    for byte in body:
        yield bytes([byte])
        yield every


@cache
def gzip_bomb(size: int = 1024 * MiB) -> bytes:
    """A valid gzip stream of ``size`` zero bytes (about 1 MB for 1 GiB), built in 0.3 s.

    Deflate output after a full flush depends only on the input that follows, so one
    compressed MiB is repeated instead of compressing a GiB; the trailer's CRC and
    length are those of the whole stream, so a decoder sees a faithful 1 GiB file."""
    chunk = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush(zlib.Z_FINISH)[:-8]  # an empty final block, without the trailer for 2 MiB
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(chunk, crc)
    return head + block * (size // MiB - 2) + end + struct.pack("<II", crc, size & 0xFFFFFFFF)


def entity_feed(link: str, *, doctype: str = '<!DOCTYPE rss [\n<!ENTITY e "{value}">\n]>', encoding: str = "utf-8") -> bytes:
    """A 40 KB feed whose one 10 KB entity, used 10,000 times, would expand to 100 MB.
    (feedparser only takes declarations that start a line.)"""
    declaration = doctype.format(value="A" * 10_000)
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n{declaration}\n<rss version="2.0"><channel><title>t</title>'
        f"<item><title>&e;</title><link>{link}</link><description>{'&e;' * 10_000}</description></item></channel></rss>"
    )
    return text.encode(encoding)


@dataclass(frozen=True)
class Fault:
    """One fault of the site and what a pass must leave behind. Reasons are regular expressions."""

    title: str
    server: str
    """What the server does, in a few words (the figures' second column)."""
    feeds: tuple[str, ...]
    feed_errors: Mapping[str, str] = field(default_factory=dict)
    """Feed name → what its ``last_error`` must say; the fault's other feeds must have none."""
    stored: tuple[str, ...] = ()
    """Article paths that must be stored (the good ones beside the fault)."""
    failed: Mapping[str, str] = field(default_factory=dict)
    """Article path → what its ``error`` must say."""
    absent: tuple[str, ...] = ()
    """Article paths that must not be in the store at all (cut from a feed in transit)."""
    text: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Article path → words its stored passages must contain."""
    measured: bool = False
    """Its pass's peak memory is measured on its own."""


class FaultSite:
    """Routes of a ``LocalServer`` and the feeds file that lists them."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.feeds: dict[str, str] = {}

    def url(self, path: str) -> str:
        return self.server.url(path)

    def route(self, path: str, handler: Handler) -> str:
        self.server.route(path.split("?")[0], handler)
        return path

    def article(self, path: str) -> Handler:
        """The handler of a good page at ``path`` (not routed: see ``good``)."""
        return reply(200, article_html(path).encode(), HTML)

    def good(self, *paths: str) -> tuple[str, ...]:
        for path in paths:
            self.route(path, self.article(path))
        return paths

    def feed(self, name: str, path: str, handler: Handler) -> str:
        self.feeds[name] = self.url(path)
        self.route(path, handler)
        return name

    def listing(self, name: str, path: str, links: Sequence[str]) -> str:
        """A well-formed feed listing ``links`` (site paths)."""
        return self.feed(name, path, reply(200, rss([self.url(link) for link in links]), RSS))

    def hang(self, seconds: float = 60) -> Handler:
        """Accepts the request and says nothing (until the server stops)."""

        def handler(_request: Request) -> tuple[int, Headers, Body]:
            self.server.sleep(seconds)
            return 503, {}, b""

        return handler


Builder = Callable[[FaultSite], Fault]
FAULTS: dict[str, Builder] = {}


def fault(key: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        FAULTS[key] = builder
        return builder

    return register


def build(site: FaultSite, keys: Sequence[str] | None = None) -> dict[str, Fault]:
    """Install the good feed and the faults named (all by default) on ``site``."""
    site.listing("good", "/good/feed.xml", site.good(*(f"/good/{n}" for n in range(1, 5))))
    return {key: FAULTS[key](site) for key in (keys or FAULTS)}


@fault("http-500")
def _http_500(site: FaultSite) -> Fault:
    site.route("/500/always", reply(500, b"oops", "text/plain"))
    site.route("/500/once", in_turn(reply(500, b"oops", "text/plain"), site.article("/500/once")))
    return Fault(
        "HTTP 500", "feed always 500; one page always 500, one 500 once then 200",
        feeds=(
            site.feed("500-feed", "/500/feed.xml", reply(500, b"oops", "text/plain")),
            site.listing("500-pages", "/500/pages.xml", ["/500/good", "/500/always", "/500/once"]),
        ),
        feed_errors={"500-feed": r"HTTP 500 Internal Server Error"},
        stored=(*site.good("/500/good"), "/500/once"),
        failed={"/500/always": r"HTTP 500 Internal Server Error"},
    )


@fault("http-429")
def _http_429(site: FaultSite) -> Fault:
    site.route("/429/once", in_turn(reply(429, b"", Retry_After="1"), site.article("/429/once")))
    site.route("/429/always", reply(429, b"", Retry_After="3600"))
    return Fault(
        "HTTP 429 + Retry-After", "feed 429 (Retry-After: 3600); a page 429 (1 s) once; a page 429 (3600) always",
        feeds=(
            site.feed("429-feed", "/429/feed.xml", reply(429, b"", Retry_After="3600")),
            site.listing("429-pages", "/429/pages.xml", ["/429/good", "/429/once", "/429/always"]),
        ),
        feed_errors={"429-feed": r"HTTP 429 Too Many Requests"},
        stored=(*site.good("/429/good"), "/429/once"),
        failed={"/429/always": r"HTTP 429 Too Many Requests"},
    )


@fault("hang")
def _hang(site: FaultSite) -> Fault:
    site.route("/hang/page", reply(200, [60.0], HTML))
    return Fault(
        "server hangs", "feed: no answer at all; page: headers, then silence",
        feeds=(
            site.feed("hang-feed", "/hang/feed.xml", site.hang()),
            site.listing("hang-pages", "/hang/pages.xml", ["/hang/good", "/hang/page"]),
        ),
        feed_errors={"hang-feed": r"ReadTimeout"},
        stored=site.good("/hang/good"),
        failed={"/hang/page": r"ReadTimeout"},
    )


@fault("drip")
def _drip(site: FaultSite) -> Fault:
    site.route("/drip/page", lambda _r: (200, {"Content-Type": HTML}, drip(article_html("/drip/page").encode())))
    return Fault(
        "slow drip", "one byte every 0.25 s, for feed and page (each read in time, the whole never)",
        feeds=(
            site.feed("drip-feed", "/drip/feed.xml", lambda _r: (200, {"Content-Type": RSS}, drip(rss(["/drip/good"])))),
            site.listing("drip-pages", "/drip/pages.xml", ["/drip/good", "/drip/page"]),
        ),
        feed_errors={"drip-feed": r"no complete response within \d+ s"},
        stored=site.good("/drip/good"),
        failed={"/drip/page": r"no complete response within \d+ s"},
    )


@fault("truncated")
def _truncated(site: FaultSite) -> Fault:
    whole = rss([site.url(p) for p in ("/cut/good", "/cut/html", "/cut/transfer", "/cut/lost")])
    cut = whole[: whole.index(b"<title>Item 3") + 10]  # inside the last item's title, before its link
    page = article_html("/cut/transfer").encode()
    site.route("/cut/html", reply(200, article_html("/cut/html").encode()[:-300], HTML))  # ends mid-paragraph
    site.route("/cut/transfer", reply(200, page[: len(page) // 2], HTML, Content_Length=str(len(page))))
    return Fault(
        "truncated feeds and pages",
        "feed cut inside its last item; a transfer closed at half its Content-Length; a page cut mid-paragraph",
        feeds=(
            site.feed("cut-feed", "/cut/feed.xml", reply(200, cut, RSS)),
            site.feed("cut-transfer-feed", "/cut/transfer.xml", reply(200, whole[:200], RSS, Content_Length=str(len(whole)))),
        ),
        feed_errors={"cut-transfer-feed": r"RemoteProtocolError"},
        stored=(*site.good("/cut/good"), "/cut/html"),
        failed={"/cut/transfer": r"RemoteProtocolError"},
        absent=("/cut/lost",),
    )


@fault("malformed")
def _malformed(site: FaultSite) -> Fault:
    good, broken = site.url("/bad/good?a=1&b=2"), "/bad/markup"
    body = (  # bare "&"s, unclosed tags inside a description, no closing channel and rss
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Fish & Chips News</title><item><title>Q&A</title>'
        f"<link>{good}</link><description>unclosed <b>bold <i>x</description></item>"
        f"<item><title>Two</title><link>{site.url(broken)}</link></item>"
    ).encode()
    site.route(broken, reply(200, article_html(broken).replace("</p>", "").replace("</article>", "<div><span>").encode(), HTML))
    garbage = random.Random(7).randbytes(4000)
    return Fault(
        "malformed feeds and pages",
        "feed not well-formed (bare &, unclosed tags); random bytes, an HTML page, an empty body as feeds; page with unclosed tags",
        feeds=(
            site.feed("bad-xml", "/bad/feed.xml", reply(200, body, RSS)),
            site.feed("bad-garbage", "/bad/garbage.xml", reply(200, garbage, RSS)),
            site.feed("bad-html", "/bad/html.xml", reply(200, b"<html><body><h1>Welcome!</h1></body></html>", HTML)),
            site.feed("bad-empty", "/bad/empty.xml", reply(200, b"", RSS)),
        ),
        feed_errors={"bad-garbage": r"not a feed", "bad-html": r"not a feed \(served as text/html", "bad-empty": r"not a feed"},
        stored=(*site.good("/bad/good?a=1&b=2"), broken),
    )


@fault("charset")
def _charset(site: FaultSite) -> Fault:
    """Pages whose charset is missing, contradicted or unknown, and feeds likewise."""
    pages = {
        "/charset/none": (article_html("/charset/none", extra=ACCENTED).encode("cp1252"), "text/html"),
        "/charset/bom": (b"\xef\xbb\xbf" + article_html("/charset/bom", extra=ACCENTED).encode(), "text/html; charset=iso-8859-1"),
        "/charset/meta": (
            article_html("/charset/meta", extra=ACCENTED).replace("<head>", "<head><meta charset='windows-1252'>").encode("cp1252"),
            "text/html; charset=utf-8",
        ),
        "/charset/unknown": (article_html("/charset/unknown", extra=ACCENTED).encode(), "text/html; charset=x-no-such-charset"),
    }
    for path, (body, content_type) in pages.items():
        site.route(path, reply(200, body, content_type))
    listed = [site.url(p) for p in pages]
    ascii_default = rss(listed, title="Zürich", item_title="Zürich").replace(b' encoding="utf-8"', b"")
    latin = rss([site.url("/charset/good")], title="Café", item_title="Café").decode().encode("cp1252")
    return Fault(
        "wrong or missing charsets",
        "pages: none declared (cp1252), BOM against the header, header against the meta, unknown label; "
        "feeds: UTF-8 as text/xml without charset, cp1252 labelled UTF-8",
        feeds=(
            site.feed("charset-textxml", "/charset/feed.xml", reply(200, ascii_default, "text/xml")),
            site.feed("charset-mislabelled", "/charset/latin.xml", reply(200, latin, "application/rss+xml; charset=utf-8")),
        ),
        stored=(*site.good("/charset/good"), *pages),
        text=dict.fromkeys(pages, ACCENTED),
    )


@fault("not-html")
def _not_html(site: FaultSite) -> Fault:
    rng = random.Random(11)
    kinds = {
        "/media/report.pdf": (b"%PDF-1.7\n" + rng.randbytes(20_000), "application/pdf"),
        "/media/photo": (b"\x89PNG\r\n\x1a\n" + rng.randbytes(20_000), "image/png"),
        "/media/api": (b'{"story": "not a page"}', "application/json"),
        "/media/binary-as-html": (rng.randbytes(20_000), "text/html"),
        "/media/pdf-untyped": (b"%PDF-1.7\n" + rng.randbytes(20_000), None),
    }
    for path, (body, content_type) in kinds.items():
        site.route(path, reply(200, body, content_type))
    return Fault(
        "non-HTML behind article links",
        "a PDF, a PNG, JSON; random bytes served as text/html; a PDF with no Content-Type",
        feeds=(site.listing("media-pages", "/media/pages.xml", ["/media/good", *kinds]),),
        stored=site.good("/media/good"),
        failed={
            "/media/report.pdf": r"not an HTML page \(application/pdf\)",
            "/media/photo": r"not an HTML page \(image/png\)",
            "/media/api": r"not an HTML page \(application/json\)",
            "/media/binary-as-html": r"no article text found",
            "/media/pdf-untyped": r"no article text found",
        },
    )


@fault("gzip-bomb")
def _gzip_bomb(site: FaultSite) -> Fault:
    site.route("/bomb/page", reply(200, gzip_bomb(), HTML, Content_Encoding="gzip"))
    return Fault(
        "1 GiB gzip bomb", "1 MB of gzip that inflates to 1 GiB, as a feed and as a page (Content-Encoding: gzip)",
        feeds=(
            site.feed("bomb-feed", "/bomb/feed.xml", reply(200, gzip_bomb(), RSS, Content_Encoding="gzip")),
            site.listing("bomb-pages", "/bomb/pages.xml", ["/bomb/good", "/bomb/page"]),
        ),
        feed_errors={"bomb-feed": r"body larger than 15728640 bytes"},
        stored=site.good("/bomb/good"),
        failed={"/bomb/page": r"body larger than 15728640 bytes"},
        measured=True,
    )


@fault("entities")
def _entities(site: FaultSite) -> Fault:
    forms = {
        "plain": entity_feed(site.url("/entities/plain")),
        # Removing the inner declarations would splice the outer ones together.
        "spliced": entity_feed(
            site.url("/entities/spliced"),
            doctype='<!DOCTY<!ENTITY a "">PE rss [\n<!ENT<!ENTITY b "">ITY e "{value}">\n]>',
        ),
        # No byte-order mark: "<!ENTITY" is not those ASCII bytes until feedparser decodes it.
        "utf16": entity_feed(site.url("/entities/utf16"), encoding="utf-16-le"),
    }
    return Fault(
        "quadratic entity expansion",
        "40 KB feeds: one 10 KB entity used 10,000 times (100 MB if expanded): plain, spliced, UTF-16 without BOM",
        feeds=tuple(site.feed(f"entities-{form}", f"/entities/{form}.xml", reply(200, body, "application/xml")) for form, body in forms.items()),
        stored=site.good(*(f"/entities/{form}" for form in forms)),
        measured=True,
    )


@fault("redirect-loop")
def _redirect_loop(site: FaultSite) -> Fault:
    site.route("/loop/b.xml", reply(302, b"", Location="/loop/a.xml"))
    site.route("/loop/page", reply(301, b"", Location="/loop/page"))
    return Fault(
        "redirect loops", "feed: a.xml → b.xml → a.xml …; page: redirects to itself",
        feeds=(
            site.feed("loop-feed", "/loop/a.xml", reply(302, b"", Location="/loop/b.xml")),
            site.listing("loop-pages", "/loop/pages.xml", ["/loop/good", "/loop/page"]),
        ),
        feed_errors={"loop-feed": r"more than 5 redirects"},
        stored=site.good("/loop/good"),
        failed={"/loop/page": r"more than 5 redirects"},
    )


@fault("moved")
def _moved(site: FaultSite) -> Fault:
    body = rss(["/moved/story"])  # relative: resolved against the new URL

    def new_feed(request: Request) -> tuple[int, Headers, Body]:
        if request.headers.get("if-none-match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return 200, {"Content-Type": RSS, "ETag": '"v1"'}, body

    site.route("/moved/new.xml", new_feed)
    return Fault(
        "301 to a new feed URL", "old.xml answers 301 → new.xml (with an ETag; relative links)",
        feeds=(site.feed("moved", "/moved/old.xml", reply(301, b"", Location="/moved/new.xml")),),
        stored=site.good("/moved/story"),
    )
