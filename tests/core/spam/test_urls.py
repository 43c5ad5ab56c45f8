"""Canonical URLs: cosmetic differences disappear, meaningful ones stay."""

from __future__ import annotations

import pytest

from streams.core.spam import canonical_url, canonical_urls


@pytest.mark.parametrize(("url", "canonical"), [
    ("HTTP://WWW.Example.COM:80/A/?utm_source=x&b=2&a=1#top", "https://example.com/A?a=1&b=2"),
    ("https://example.com/", "https://example.com"),
    ("https://example.com", "https://example.com"),
    ("https://example.com:443/p", "https://example.com/p"),
    ("https://example.com:8443/p", "https://example.com:8443/p"),
    ("https://example.com./p", "https://example.com/p"),
    ("https://user:secret@Example.com/p", "https://example.com/p"),
    ("www.example.com/p/", "https://example.com/p"),
    ("example.com:8080/p", "https://example.com:8080/p"),
    ("  https://example.com/p  ", "https://example.com/p"),
    # tracking parameters, whatever their case; the others keep order-free values
    ("https://e.com/p?fbclid=1&gclid=2&igshid=3&mc_cid=4&mc_eid=5&ref=6&Utm_Medium=7",
     "https://e.com/p"),
    ("https://e.com/p?z=1&a=2&a=1&empty=", "https://e.com/p?a=1&a=2&empty=&z=1"),
    ("https://e.com/p?refresh=1", "https://e.com/p?refresh=1"),  # only exact names go
    # what identifies the page stays
    ("https://e.com/Path/Case", "https://e.com/Path/Case"),
    ("https://shop.e.com/p", "https://shop.e.com/p"),
    ("ftp://Files.e.com/x/", "ftp://files.e.com/x"),
    ("http://[2001:DB8::1]:80/x", "https://[2001:db8::1]/x"),
    # not URLs: returned stripped, otherwise as they are
    ("mailto:Someone@e.com", "mailto:Someone@e.com"),
    ("not a url", "not a url"),
    ("https://e.com:99999/x", "https://e.com:99999/x"),
    ("", ""),
])  # fmt: skip
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_spellings_of_one_link_are_one() -> None:
    spellings = [
        "https://Spam.Example/offer?utm_source=twitter",
        "https://SPAM.EXAMPLE/offer/?utm_content=1&utm_term=dm#x",
        "http://www.spam.example:80/offer",
        "spam.example/offer",
    ]
    assert {canonical_url(u) for u in spellings} == {"https://spam.example/offer"}


def test_canonical_urls_of_an_event() -> None:
    urls = ["https://E.com/a", "https://e.com/a/?utm_source=x", "https://e.com/b", ""]
    assert canonical_urls(urls) == ("https://e.com/a", "https://e.com/b")
    assert canonical_urls(None) == () == canonical_urls([])
