"""Canonical article URLs: one story reached through two tracking links is one article.

Only known tracking parameters are dropped. courlan's cleaners also drop
parameters that select content on some sites (``cid=``, ``gallery=``), so the
list here is explicit, and the raw link is kept beside the canonical one.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "__hs", "_hs", "stm_")
_TRACKING_NAMES = frozenset(
    {
        "fbclid", "gclid", "dclid", "gclsrc", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "ocid", "cmpid",
        "sr_share", "ref_src", "ref_url", "xtor", "at_medium", "at_campaign", "ito", "s_cid",
        "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee", "vero_id", "oly_enc_id",
        "oly_anon_id", "rb_clickid", "soc_src", "soc_trk", "spm", "smid", "smtyp", "__twitter_impression",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_NAMES or lowered.startswith(_TRACKING_PREFIXES)


def canonicalize_url(url: str) -> str:
    """Lower-case scheme and host, drop default ports, fragments and tracking
    parameters; keep every other parameter in its original order."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    netloc = host
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{parts.port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" + netloc[len(host):]
    # Filter the raw pairs so that kept parameters stay byte for byte as published.
    query = "&".join(
        pair for pair in parts.query.split("&") if pair and not is_tracking_param(unquote_plus(pair.split("=", 1)[0]))
    )
    path = re.sub(r"/{2,}", "/", parts.path) or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def host_of(url: str) -> str:
    """Registered host without a leading ``www.``, for per-site grouping."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host
