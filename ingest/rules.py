"""News boilerplate rules: what trafilatura leaves in article text.

Each rule is a small named function over the page's paragraphs that returns
the paragraphs it removes, with a reason. They run in order; later rules see
what earlier ones removed (an author's name found in the byline lets the bio
rule find the bio). Rules are deliberately conservative: a body sentence lost
is worse than a stray credit line kept.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ingest.passages import jaccard, normalize, shingle_batch

_AGENCIES = (
    r"yonhap|newsis|news1|ap|afp|reuters|associated press|getty images|getty|epa|efe|xinhua|kyodo|jiji|"
    r"dpa|ani|pti|upi|ansa|tass|ria novosti|bloomberg|shutterstock|istock|alamy|joongang|korea daily|"
    r"afp via getty images|pool|handout|courtesy|共同|時事|新華社|新华社|中新社|연합뉴스|뉴시스|뉴스1"
)
_PHOTO_WORDS = re.compile(
    r"\b(?:photo|photos|photograph|pictured|poses|posing)\b|"
    r"[,(]\s*(?:(?:second|third|far) (?:from )?)?(?:left|right|center|centre|top|bottom)\s*[,)]",
    re.I,
)
# "This photo, carried by …, shows …": a demonstrative, not "An image released by … shows", which is story text.
_CAPTION_LEAD = re.compile(
    r"^(?:in )?(?:this|these) (?:(?:file|handout|undated|aerial|combination|supplied|provided) )*"
    r"(?:photos?|photographs?|pictures?|images?|screenshots?|screen grabs?|video grabs?)\b"
    r"(?:\W+\w+){0,14}?\W+(?:shows?|showing|taken|released|provided|carried|distributed|dated|courtesy)\b",
    re.I,
)
_CAPTION_LABEL = re.compile(r"^(?:photo|photograph|image|picture|pictured|caption|credit|photo credit|file photo)\s*[:：]", re.I)
_END_CREDIT = re.compile(r"[\[(（]\s*([^\[\]()（）]{1,80})\s*[\])）][\s.。]*$")
_PHOTO_AGENCIES = r"getty images|afp via getty images|shutterstock|istock(?:photo)?|alamy|unsplash|pexels|epa(?:-efe)?"
_PHOTO_CREDIT = re.compile(
    rf"^(?:photo|photograph|image|picture|video|graphic)s?\b|\bphotos?\b|^(?:사진|图|圖|写真)\s*[=:：/]|^(?:{_PHOTO_AGENCIES})\b|"
    r"(?:撮影|摄|攝|촬영)$",
    re.I,
)
# "(Ravi Sandoval / Valley Courier)": photographer / outlet
_SLASH_CREDIT = re.compile(r"^[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){0,3}\s*/\s*[A-Z][\w.'’&-]*(?: [A-Z][\w.'’&-]*){0,4}$")
_AGENCY_CREDIT = re.compile(rf"^(?:{_AGENCIES})\b|^[A-Z][A-Z .&/-]+$", re.I)
# "…on Monday. AP Photo/Daniel Ruiz", "… REUTERS/Jane Doe": credits without brackets
_BARE_CREDIT = re.compile(
    rf"(?:^|[.!?。]\s*)(?:(?:AP|AFP|Reuters|REUTERS|EPA|Yonhap|{_PHOTO_AGENCIES})(?: Photo)?/[\w .'-]{{2,40}}|"
    r"Photo(?:graph)?(?: by|:) [\w .'/-]{2,40})$",
    re.I,
)
# "…记者 赵峰 摄", searched for only in paragraphs with 摄: as an alternative in the pattern above,
# it was tried at every position of every paragraph (about a tenth of the rules' time)
_SHOT_BY = re.compile(r"\S{2,5}\s*摄$")

_AD_MARKER = re.compile(
    r"^[\W_]*(advertisement|advertising|advertisment|anzeige|publicité|publicidad|sponsored( content| post)?|"
    r"ad|ads|story continues below( advertisement)?|article continues below|continue reading below|광고|広告)[\W_]*$",
    re.I,
)
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_BRACKETED_EMAIL = re.compile(rf"[\[(<（]\s*(?:mailto:)?{_EMAIL}\s*[\])>）]")
_ONLY_EMAIL = re.compile(rf"^[\W_]*(?:e-?mail\s*[:：]?\s*)?{_EMAIL}[\W_]*$", re.I)
_BY = re.compile(r"^by\s+", re.I)
_AND = re.compile(r"\band\b|&", re.I)
_BYLINE = re.compile(r"^(?:by|written by|story by|words by|text by)\s+(.{2,160})$", re.I)
_KOREAN_BYLINE = re.compile(rf"^[가-힣]{{2,4}}\s?(?:기자|특파원|객원기자)(?:\s*[\[(]?{_EMAIL}[\])]?)?$")
_NAME_CONNECTORS = {"and", "&", "of", "the", "for", "in", "at", "with", "de", "van", "von", "da", "del", "und", "y"}
# "(Reporting by A; Editing by B)": each clause "<role> by <names>"
_CREDIT = re.compile(
    r"^[\[(]?\s*(?:(?:additional |editing and )?reporting|writing|editing|compiled|translated|fact[- ]checking)"
    r"(?: and \w+)? by\s+([^;)\]]+)",
    re.I,
)
_CJK_CREDIT = re.compile(r"^(?:责任编辑|責任編輯|编辑|編輯|来源|來源|记者|記者|原标题|原標題|출처|편집|사진)\s*[:：]")
_CJK_BYLINE = re.compile(
    r"^(?:(?:文|文字|撰文)\s*[/／:：]|(?:本报|本報)?(?:记者|記者)\s+[\u4e00-\u9fff]{2,4}(?:\s|$)).{0,36}$"
)
_PAREN_NAME = re.compile(r"^[（(]\s*[^\s()（）\d]{2,12}(?:\s[^\s()（）\d]{1,12}){0,2}\s*[）)]$")  # "（山本健太）" closing a story
_CONTACT = re.compile(
    rf"^(?i:reach|contact|email|e-mail|write to)\s+[A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){{0,3}}\s+(?:at|on|via|:)\s.*"
    rf"(?:{_EMAIL}|\d{{3}}[-. ]\d{{4}}|@\w+)"
)
_COPYRIGHT = re.compile(
    r"^(?:©|\(c\)|copyright\b)|\ball rights reserved\b|무단\s*전재|転載|版权所有|版權所有|未经授权不得转载|未經授權不得轉載|"
    r"禁止转载|\bcontributed(?: reporting)? to this (?:report|story|article)\b",
    re.I,
)
_AGENCY_ONLY = re.compile(rf"^[\W_]*(?:{_AGENCIES})(?: news(?: agency)?)?[\W_]*$", re.I)
_TEMPERATURE = re.compile(r"^-?\d{1,3}(?:[.,]\d)?\s*°?\s*[FC]$", re.I)
_DATE_LINE = re.compile(
    r"^(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
    r"(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}"
    r"|\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+\d{4}"
    r"|\d{4}[-./]\d{1,2}[-./]\d{1,2})$",
    re.I,
)
_DATE = (
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
    r"(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:,?\s+\d{4})?"
    r"|\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+\d{4}"
    r"|\d{4}\s*[-./年]\s*\d{1,2}\s*[-./月]\s*\d{1,2}\s*日?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4})"
)
_CLOCK = r"\d{1,2}[:.]\d{2}\s*(?:[ap]\.?m\.?)?"
_TIMESTAMP = re.compile(
    rf"^(?:(?:(?:first |originally )?published|updated|last updated|posted|modified|created)\b\s*(?:on|at)?|"
    rf"最終更新|更新日時|公開日|配信|입력|수정|최종\s*수정|发布时间|更新时间|發佈時間|发布于)\s*[:：]?\s*"
    rf"(?:{_DATE}|{_CLOCK}|\d+\s*(?:hours?|hrs?|minutes?|mins?|days?)\s+ago|today|yesterday)"
    rf"|^{_DATE}\s*,?\s*(?:at\s+)?{_CLOCK}",
    re.I,
)
_PROMPTS: dict[str, re.Pattern[str]] = {
    "republication_note": re.compile(
        r"\b(?:first|originally) (?:published|appeared|ran) (?:by|in|on|at)\b|\brepublished (?:here )?(?:with|under|by)\b|"
        r"\bthis (?:story|article|report) (?:was|is) (?:produced|distributed|republished|syndicated) (?:by|with|in partnership|under)\b",
        re.I,
    ),
    "related_links": re.compile(
        r"^[\[【]?\s*(?:related(?: stories| articles| coverage| news| content| reading| links)?|read more|read also|also read|"
        r"see also|more from [^:]{1,40}|more stories|most read|most popular|most viewed|trending(?: now)?|"
        r"recommended(?: for you| stories)?|you may also like|you might also like|editor'?s picks|"
        r"top stories|latest news|관련\s*기사|相关新闻|相關新聞|相关阅读|関連記事)\s*[\]】]?\s*(?:[:：»>|-]|$|(?<=[\]】]))",
        re.I,
    ),
    "newsletter_prompt": re.compile(
        r"^(?:sign up|subscribe|register|get|receive)\b.{0,80}\b(?:newsletters?|briefing|digest|inbox|e-?mails?|alerts)\b|"
        r"(?:^|[.?!:]\s+)(?:sign up|subscribe) (?:for|to) (?:our|the) [\w'’ ,-]{0,60}newsletter|^newsletters?\b|"
        r"(?:メルマガ|メールマガジン|ニュースレター|뉴스레터).{0,30}(?:登録|購読|구독|신청)|(?:登録|구독|신청).{0,20}(?:メルマガ|メールマガジン|뉴스레터)",
        re.I,
    ),
    "subscription_prompt": re.compile(
        r"^(?:subscribe (?:now|today|for)|become a (?:subscriber|member) (?:today|now|to|and)|"
        r"support (?:our|independent|local) journalism|already a subscriber|log ?in to (?:read|continue)|subscribers? only)\b|"
        r"\b(?:to continue reading|already a subscriber\?|subscribe (?:now|today))|\bsubscri\w*\b.{0,60}\bunlimited (?:digital )?access\b",
        re.I,
    ),
    "cookie_notice": re.compile(
        r"^(?:we use cookies|we and our partners use|(?:this|our) (?:web)?site uses cookies|by continuing to (?:use|browse)|"
        r"accept (?:all )?cookies|cookie (?:policy|settings|preferences|notice))\b|\bwe use cookies\b",
        re.I,
    ),
    "follow_prompt": re.compile(
        r"^(?:follow us\b|follow [\w .@'-]{1,40} on (?:facebook|twitter|x|instagram|youtube|telegram|tiktok|threads|"
        r"bluesky|mastodon|linkedin|whatsapp|kakaotalk|line)\b|like us on facebook|join (?:us|our \w+) on (?:facebook|telegram|whatsapp))|"
        r"扫码关注|掃碼關注|关注.{0,20}公众号|關注.{0,20}公眾號",
        re.I,
    ),
}
# A person's job in journalism as the subject of the sentence: "Jane Doe is a staff writer …",
# "Kenta Yamamoto writes about tourism for the …"; not "General Motors is cutting … staff".
_BIO = re.compile(
    r"^(?!(?:This|That|These|Those|It|He|She|They|We|There|Here|What|The)\b)"
    r"[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){1,4}\s+(?:"
    r"(?:is|was|has been|serves as|joined \S+(?: \S+)? as)\s+(?:a|an|the)\s+(?:[\w-]+\s+){0,3}"
    r"(?:reporter|correspondent|editor|writer|journalist|columnist|contributor|producer|photographer|intern)\b|"
    r"(?:covers|writes about|reports on)\b.{0,120}\bfor (?:the )?[A-Z])",
)
_ABOUT_AUTHOR = re.compile(
    r"^(?:about (?:the )?(?:authors?|writers?|reporters?|contributors?)|この記事を書いた人|筆者紹介|著者紹介|"
    r"기자 소개|작성자|关于作者|作者简介)\W*$",
    re.I,
)
_NEAR_REPEAT = 0.8
_CAPTION_ECHO = 0.85
_SHORT_WORDS = 8
_TAIL = 5  # author boxes and bios sit among the last paragraphs


@dataclass(frozen=True, slots=True)
class Removal:
    rule: str
    text: str
    detail: str | None = None

    def as_dict(self) -> dict[str, str]:
        data = {"rule": self.rule, "text": self.text}
        if self.detail:
            data["detail"] = self.detail
        return data


@dataclass
class Page:
    """What the rules see: paragraphs, page metadata, and what was already removed."""

    paragraphs: list[str]
    title: str | None = None
    author: str | None = None
    site_name: str | None = None
    html_captions: list[str] = field(default_factory=list)  # captions dropped with the page's figure markup
    removed: dict[int, Removal] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)  # normalised author names seen in bylines and author boxes
    _normal: dict[int, str] = field(default_factory=dict)
    _shingles: dict[int, np.ndarray] = field(default_factory=dict)
    _lengths: dict[int, int] = field(default_factory=dict)

    def kept(self) -> list[tuple[int, str]]:
        return [(i, p) for i, p in enumerate(self.paragraphs) if i not in self.removed]

    def length(self, index: int) -> int:
        """Words in the paragraph."""
        if index not in self._lengths:
            self._lengths[index] = len(_words(self.paragraphs[index]))
        return self._lengths[index]

    def normal(self, index: int) -> str:
        if index not in self._normal:
            self._normal[index] = normalize(self.paragraphs[index])
        return self._normal[index]

    def shingles(self, index: int) -> np.ndarray:
        if index not in self._shingles:
            self.shingle([index])
        return self._shingles[index]

    def shingle(self, indices: Iterable[int]) -> None:
        """Shingle these paragraphs together, ahead of the rule's ``shingles`` calls."""
        missing = [i for i in dict.fromkeys(indices) if i not in self._shingles]
        if missing:
            self._shingles.update(zip(missing, _shingled([self.normal(i) for i in missing])))


Rule = Callable[[Page], dict[int, str | None]]


def _shingled(normals: list[str]) -> list[np.ndarray]:
    """Shingles of normalised passages, in one numpy pass: for a paragraph alone, numpy's
    cost per call is most of the cost."""
    if not normals:
        return []
    bounds, hashes = shingle_batch(normals, 5)
    return [hashes[bounds[n] : bounds[n + 1]] for n in range(len(normals))]


_WORD = re.compile(r"[\w'’.-]+")
_NAME_PUNCTUATION = re.compile(r"[\d:;,.!?]")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _looks_like_names(text: str) -> bool:
    words = [w for w in _words(_BRACKETED_EMAIL.sub(" ", text)) if w.lower() not in _NAME_CONNECTORS]
    if not words or len(words) > 12:
        return False
    capitalised = sum(1 for w in words if w[0].isupper() or not w[0].isalpha())
    return capitalised / len(words) >= 0.6


def _similar_length(a: int, b: int, threshold: float) -> bool:
    """Shingle Jaccard >= threshold needs texts of about the same length (10 % slack for
    the punctuation normalisation drops); checking this first saves the shingling."""
    return threshold * max(a, b) <= min(a, b) * 1.1


def _looks_like_name_line(text: str) -> bool:
    """A short line of capitalised words without digits or sentence punctuation."""
    return not _NAME_PUNCTUATION.search(text) and len(_words(text)) <= 6 and _looks_like_names(text)


def ad_marker(page: Page) -> dict[int, str | None]:
    return {i: None for i, p in page.kept() if _AD_MARKER.match(p)}


def weather_widget(page: Page) -> dict[int, str | None]:
    """Temperature, city and date lines of a site header, before the first real paragraph."""
    lead: list[int] = []
    for i, p in page.kept():
        if page.length(i) > 6 or p.rstrip().endswith((".", "!", "?", "”", '"')):
            break
        lead.append(i)
    if not any(_TEMPERATURE.match(page.paragraphs[i].strip()) for i in lead):
        return {}
    return dict.fromkeys(lead)


def byline(page: Page) -> dict[int, str | None]:
    found: dict[int, str | None] = {}
    author = normalize(page.author or "")
    for i, p in page.kept():
        text = p.strip()
        match = _BYLINE.match(text)
        if match and not text.endswith((".", "!", "?")) and _looks_like_names(match.group(1)):
            names = _BRACKETED_EMAIL.sub("", match.group(1)).split(",")[0]
            page.names.update(normalize(n) for n in _AND.split(names) if n.strip())
            found[i] = None
        elif _KOREAN_BYLINE.match(text) or _ONLY_EMAIL.match(text) or _CJK_BYLINE.match(text) or _PAREN_NAME.match(text):
            found[i] = None
        elif page.length(i) <= 25 and (_BRACKETED_EMAIL.search(text) or _CONTACT.match(text)):
            found[i] = "contact line"
        elif author and normalize(_BY.sub("", text)) == author:
            found[i] = "the page's author"
    return found


def credit_line(page: Page) -> dict[int, str | None]:
    found: dict[int, str | None] = {}
    for i, p in page.kept():
        text = p.strip()
        credit = _CREDIT.match(text)
        if credit and page.length(i) <= 40 and _looks_like_names(credit.group(1)):
            found[i] = "reporting/editing credit"
        elif page.length(i) <= 30 and _COPYRIGHT.search(text):
            found[i] = "copyright or contributor line"
        elif _AGENCY_ONLY.match(text):
            found[i] = "agency credit"
        elif _CJK_CREDIT.match(text) and len(text) <= 60:
            found[i] = "source/editor credit"
    return found


def _is_site(credit: str, site_name: str) -> bool:
    """The page's own outlet: "(Setouchi Shimpo)" on "Setouchi Shimpo English"."""
    return len(credit) >= 4 and bool(site_name) and (site_name.startswith(credit) or credit.startswith(site_name))


def _is_caption(text: str, words: int, site_name: str) -> bool:
    if words > 60:
        return False
    if _CAPTION_LEAD.match(text) or _CAPTION_LABEL.match(text) or _BARE_CREDIT.search(text):
        return True
    if "摄" in text and _SHOT_BY.search(text):
        return True
    credit = _END_CREDIT.search(text)
    if not credit:
        return False
    inner = credit.group(1).strip()
    if _PHOTO_CREDIT.search(inner) or _SLASH_CREDIT.match(inner) or _is_site(normalize(inner), site_name):
        return True
    if not _AGENCY_CREDIT.match(inner):
        return False
    # A news agency in brackets also ends story paragraphs: only a shouted credit
    # ([YONHAP]) or words that describe a picture make it a caption.
    return (inner.isupper() and len(inner) > 1) or bool(_PHOTO_WORDS.search(text[: credit.start()]))


def photo_caption(page: Page) -> dict[int, str | None]:
    """Captions written into the body, and body paragraphs that repeat a caption of the page's figures."""
    found: dict[int, str | None] = {}
    texts = [c for c in page.html_captions if len(c) > 20]
    captions = list(zip(map(len, texts), _shingled([normalize(c) for c in texts])))
    site_name = normalize(page.site_name or "")
    page.shingle(i for i, p in page.kept() if any(_similar_length(len(p), n, _CAPTION_ECHO) for n, _ in captions))
    for i, p in page.kept():
        if _is_caption(p.strip(), page.length(i), site_name):
            found[i] = None
        elif any(_similar_length(len(p), n, _CAPTION_ECHO) and jaccard(page.shingles(i), c) >= _CAPTION_ECHO for n, c in captions):
            found[i] = "repeats a figure caption"
    return found


def repeated_passage(page: Page) -> dict[int, str | None]:
    """Copies of boilerplate: a paragraph that near-repeats one an earlier rule removed
    (a caption pasted twice with other quotes or a few more words), and a short name line
    repeated where another paragraph starts with it (an author box: the name twice, then
    the bio). Other repeats are story text; deduplication links them to their first copy."""
    found: dict[int, str | None] = {}
    kept = page.kept()
    lines = Counter(page.normal(i) for i, _ in kept if page.length(i) <= 6)
    page.shingle(
        k for i, p in kept for j in page.removed if _similar_length(len(p), len(page.paragraphs[j]), _NEAR_REPEAT) for k in (i, j)
    )
    for i, p in kept:
        for j, removal in page.removed.items():
            if _similar_length(len(p), len(page.paragraphs[j]), _NEAR_REPEAT) and jaccard(page.shingles(i), page.shingles(j)) >= _NEAR_REPEAT:
                found[i] = f"repeats paragraph {j + 1} ({removal.rule})"
                break
        else:
            if page.length(i) > 6 or lines[page.normal(i)] < 2 or not _looks_like_name_line(p):
                continue
            line = page.normal(i)
            if any(page.normal(k).startswith(line + " ") and page.length(k) >= 12 for k, _ in kept[-_TAIL:]):
                page.names.add(line)
                found[i] = "name in an author box"
    return found


def author_bio(page: Page) -> dict[int, str | None]:
    """A bio after the story: among the last paragraphs, it starts with a known
    author's name or reads like a bio; or it follows an 'About the author' heading."""
    found: dict[int, str | None] = {}
    kept = page.kept()
    names = {n for n in page.names | {normalize(page.author or "")} if n and not _AGENCY_ONLY.match(n)}
    for n, (i, p) in enumerate(kept):
        if _ABOUT_AUTHOR.match(p.strip()):
            found[i] = "heading"
            for j, _ in kept[n + 1 : n + 3]:  # the name, then the bio
                if page.length(j) <= 80:
                    found[j] = "after an 'About the author' heading"
    for i, p in kept[-_TAIL:]:
        text = page.normal(i)
        if any(text.startswith(name + " ") for name in names) and 12 <= page.length(i) <= 120:
            found.setdefault(i, "starts with the author's name")
        elif page.length(i) <= 80 and _BIO.match(p.strip()):
            found.setdefault(i, "reads like an author bio")
    return found


_SOCIAL = frozenset(
    "share shares sharing this article story post page on via with facebook twitter x linkedin whatsapp telegram "
    "reddit pinterest email e-mail mail print copy link url sms messenger flipboard threads bluesky mastodon tweet "
    "kakaotalk kakao line naver band comments comment save bookmark".split()
)


_SOCIAL_LEADS = _SOCIAL - {"this", "on", "via", "with"}
_SOCIAL_WORD = re.compile(r"[\w-]+")


def timestamp_line(page: Page) -> dict[int, str | None]:
    """"Published June 17, 2025 at 12:05 p.m.", "April 10, 2025 09:30 JST Last updated: …", "2025年4月11日 06:00"."""
    return {i: None for i, p in page.kept() if page.length(i) <= 16 and _TIMESTAMP.match(p.strip())}


def share_prompt(page: Page) -> dict[int, str | None]:
    """A line made only of share/print/e-mail words and social network names."""
    found: dict[int, str | None] = {}
    for i, p in page.kept():
        if page.length(i) > 16:
            continue
        words = [w.lower() for w in _SOCIAL_WORD.findall(p)]
        if words and words[0] in _SOCIAL_LEADS and all(w in _SOCIAL for w in words):
            found[i] = None
    return found


def _prompt_rule(name: str, pattern: re.Pattern[str]) -> Rule:
    def rule(page: Page) -> dict[int, str | None]:
        return {i: None for i, p in page.kept() if page.length(i) <= 40 and pattern.search(p.strip())}

    rule.__name__ = name
    return rule


def title_repeat(page: Page) -> dict[int, str | None]:
    """The headline repeated among the first paragraphs; it is stored as the title."""
    title = normalize(page.title or "")
    return {i: None for i, p in page.kept()[:5] if title and normalize(p) == title}


RULES: list[Rule] = [
    ad_marker,
    title_repeat,
    weather_widget,
    byline,
    credit_line,
    photo_caption,
    repeated_passage,
    author_bio,
    timestamp_line,
    share_prompt,
    *(_prompt_rule(name, pattern) for name, pattern in _PROMPTS.items()),
]


# "…と発表した。（共同）": an agency credit glued to the end of the story's last paragraph.
_TRAILING_CREDIT = re.compile(
    r"(?<=[\s。.」”\"])\s*([（(](?:共同|時事|新華社|新华社|中新社|연합뉴스|뉴시스|AP|AFP|Reuters|Yonhap|Kyodo|Xinhua)[）)])\s*$"
)


def apply_rules(page: Page, rules: list[Rule] = RULES) -> tuple[list[str], list[Removal]]:
    """The paragraphs kept, and each removal with its rule, in page order. Rules remove
    whole paragraphs; the one exception trims an agency credit off the last paragraph."""
    for rule in rules:
        for index, detail in rule(page).items():
            page.removed.setdefault(index, Removal(rule.__name__, page.paragraphs[index], detail))
    kept = [p for _, p in page.kept()]
    removed = [page.removed[i] for i in sorted(page.removed)]
    if kept and (credit := _TRAILING_CREDIT.search(kept[-1])):
        kept[-1] = kept[-1][: credit.start()].rstrip()
        removed.append(Removal("trailing_credit", credit.group(1)))
    return kept, removed
