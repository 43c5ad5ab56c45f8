"""Canonical URLs (R1, R2, R5): one link, however it is dressed up, is one string.

Spam links are the same target with cosmetic changes: host case, ``www.``, tracking parameters,
a fragment, a default port, a trailing slash, ``http`` for ``https``. ``canonical_url``
undoes all of these and nothing that can change which page is meant: the path keeps its case,
remaining query parameters keep their values (sorted, so order does not matter). ``www.`` is
dropped (``www.example.com`` and ``example.com`` serve the same site in practice) and ``http``
becomes ``https`` (a scheme switch is a free evasion). Short links are not expanded (no network
here). Anything without a host (``mailto:``, garbage) comes back stripped, unchanged otherwise.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
    "ttclid", "li_fat_id", "igshid", "igsh", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok",
    "ref", "ref_src", "ref_url", "spm", "vero_id", "oly_anon_id", "oly_enc_id", "rb_clickid",
    "s_cid", "wickedid",
})  # fmt: skip
TRACKING_PREFIXES = ("utm_",)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_OTHER_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?!\d)")  # mailto:x, not host:8080


def is_tracking(param: str) -> bool:
    """True for a query parameter that only says where a click came from."""
    p = param.lower()
    return p in TRACKING_PARAMS or p.startswith(TRACKING_PREFIXES)


@functools.lru_cache(maxsize=1 << 16)
def canonical_url(url: str) -> str:
    """``url`` in canonical form, e.g. ``HTTP://WWW.Example.com:80/A/?utm_source=x&b=2&a=1#top``
    → ``https://example.com/A?a=1&b=2``; scheme-less ``www.x.com/a`` is read as ``http://``."""
    raw = url.strip()
    if "://" in raw:
        text = raw
    elif _OTHER_SCHEME.match(raw) or not raw:
        return raw
    else:
        text = f"http://{raw}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a bad port or IPv6 literal: not a URL we can read
        return raw
    host = (parts.hostname or "").rstrip(".")
    if not host or any(c.isspace() for c in raw):
        return raw
    scheme = parts.scheme.lower()
    if port is not None and port == _DEFAULT_PORTS.get(scheme):
        port = None
    if scheme == "http":
        scheme = "https"
    host = host.removeprefix("www.")
    netloc = host if port is None else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking(k)
    )
    path = parts.path.rstrip("/")
    return SplitResult(scheme, netloc, path, urlencode(query), "").geturl()


def canonical_urls(urls: object) -> tuple[str, ...]:
    """The distinct canonical forms of an event's ``urls`` list, in order (None or [] → ())."""
    if not urls or not isinstance(urls, list | tuple):
        return ()
    return tuple(dict.fromkeys(canonical_url(u) for u in urls if isinstance(u, str) and u))
