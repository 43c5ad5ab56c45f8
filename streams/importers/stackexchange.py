"""A Stack Exchange data dump folder (Posts.xml, Comments.xml, Users.xml) as reply threads.

- question (PostTypeId 1) → POST by its owner, no target, conversation_id = itself;
- answer (PostTypeId 2) → REPLY by its owner to the question's owner, in_reply_to and
  conversation_id = the question;
- comment → COMMENT by its author to the owner of the post commented on, in_reply_to = that
  post, conversation_id = the thread's question.

Ids come from the dump (``se:<folder>:post:<Id>``, ``se:<folder>:comment:<Id>``), so they are
stable and references can be built without lookups; a reference may name a post that was itself
skipped. Rows are skipped on purpose, and counted in ``stats.skipped``, when:
``other_post_type`` (tag wikis and the like), ``no_owner`` (no OwnerUserId/UserId: a deleted
account, the dump keeps only a display name), ``unknown_user`` (owner not in Users.xml),
``no_parent`` (the question answered or the post commented on is not a question or answer of
the dump) and ``parent_no_owner`` (the post answered or commented on has no known owner, so
the event would have no target). Users have no follower counts: profile counts stay null
(``users()`` gives reputation). Times are UTC without a zone. HTML is stripped from texts and
links become ``urls``; a text longer than ``max_text`` is cut (``stats.truncated``) rather
than losing a thread's post.

Posts and comments are merged by time, so stream time advances as it did live (where the dump
itself is out of order, e.g. a migrated question, that order is kept). The files are streamed
with expat rather than ElementTree.iterparse: it gives line numbers for rejections and builds no
tree. Users.xml and a small index of Posts.xml (owner and question of each post) are read first.
"""

from __future__ import annotations

import heapq
import html
import re
from collections.abc import Callable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

from schemas import INTERACTION
from schemas.validate import MAX_TEXT, validate_event
from streams.errors import RapportError
from streams.importers.base import ImportRun, Item, Record, Stats, clock
from streams.importers.coerce import iso_ms

FILES = ("Posts.xml", "Comments.xml", "Users.xml")
QUESTION, ANSWER = "1", "2"

_TAG = re.compile(r"<[^>]*>")
_HREF = re.compile(r"""<a\s[^>]*?href=["'](https?://[^"']+)["']""", re.IGNORECASE)
_BARE_URL = re.compile(r"https?://[^\s<>\"'()\[\]]+")


class User(NamedTuple):
    """What Users.xml says about an account (no follower counts on Stack Exchange)."""

    name: str
    reputation: int | None
    created_at: int | None  # ms


class _Post(NamedTuple):
    owner: str | None  # None when absent or not a known user
    question: str  # Id of the thread's question (itself for a question)
    is_question: bool


class _Damage(NamedTuple):
    """Where expat gave up on a file: nothing after it can be read."""

    line: int
    message: str
    raw: bytes


def read(
    folder: str | Path,
    *,
    platform: str = "stackexchange",
    max_text: int = MAX_TEXT,
    now_ms: int | None = None,
) -> ImportRun:
    """Import a dump folder; raises RapportError only if it or one of ``FILES`` is missing."""
    d = Path(folder)
    if not d.is_dir():
        raise RapportError(f"no such folder: {d}")
    missing = [name for name in FILES if not (d / name).is_file()]
    if missing:
        raise RapportError(f"{d} is not a Stack Exchange dump: no {', '.join(missing)}")
    stats = Stats()
    items = _items(d, platform, max_text, clock(now_ms), stats)
    return ImportRun(str(d), INTERACTION, stats, items)


def users(folder: str | Path) -> dict[str, User]:
    """{user id: User} from the dump's Users.xml (a damaged file gives the users before it)."""
    out: dict[str, User] = {}
    for row in _rows(Path(folder) / "Users.xml"):
        if isinstance(row, _Damage):
            break
        a = row[1]
        if "Id" in a:
            rep = a.get("Reputation", "")
            out[a["Id"]] = User(
                a.get("DisplayName", ""), int(rep) if rep.isdigit() else None,
                iso_ms(a.get("CreationDate", "")),
            )
    return out


def _user_ids(folder: Path) -> tuple[set[str], _Damage | None]:
    """Ids of the dump's users, and where Users.xml broke if it did."""
    ids: set[str] = set()
    for row in _rows(folder / "Users.xml"):
        if isinstance(row, _Damage):
            return ids, row
        if "Id" in row[1]:
            ids.add(row[1]["Id"])
    return ids, None


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]] | _Damage]:
    """(line number, attributes) of each <row>, streamed; a _Damage last if the XML breaks."""
    parser = expat.ParserCreate()
    found: list[tuple[int, dict[str, str]] | _Damage] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == "row":
            found.append((parser.CurrentLineNumber, attrs))

    parser.StartElementHandler = start
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(1 << 20):
                parser.Parse(chunk, False)
                yield from found
                found.clear()
            parser.Parse(b"", True)
        except expat.ExpatError as exc:
            fh.seek(max(0, parser.ErrorByteIndex - 200))
            message = (
                f"{expat.ErrorString(exc.code)} at column {exc.offset}; the rest of the file "
                "is unreadable"
            )
            found.append(_Damage(exc.lineno, message, fh.read(400)))
    yield from found


def _raw(attrs: dict[str, str]) -> bytes:
    """The row as XML again, for a rejection (expat does not keep the source bytes)."""
    return ("<row " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + " />").encode()


def _index(path: Path, known: set[str]) -> dict[str, _Post]:
    """Owner and question of every question and answer, to resolve targets and threads."""
    index: dict[str, _Post] = {}
    for row in _rows(path):
        if isinstance(row, _Damage):
            break
        a = row[1]
        kind, post_id, owner = a.get("PostTypeId"), a.get("Id"), a.get("OwnerUserId")
        if post_id is None or kind not in (QUESTION, ANSWER):
            continue
        if owner not in known:
            owner = None
        if kind == QUESTION:
            index[post_id] = _Post(owner, post_id, True)
        elif "ParentId" in a:
            index[post_id] = _Post(owner, a["ParentId"], False)
    return index


def _plain(body: str) -> str:
    return html.unescape(_TAG.sub("", body)).strip()


def _unique(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def _items(
    folder: Path, platform: str, max_text: int, now_ms: int, stats: Stats
) -> Iterator[Item]:
    known, damage = _user_ids(folder)
    if damage:  # users after the damage are unknown: their rows will be skipped as such
        stats.rows += 1
        yield stats.reject(
            str(folder / "Users.xml"), damage.line, "malformed_xml", damage.message, damage.raw
        )
    index = _index(folder / "Posts.xml", known)
    site = folder.name
    posts = _events(folder / "Posts.xml", site, _post_event, known, index, platform, max_text,
                    now_ms, stats)
    comments = _events(folder / "Comments.xml", site, _comment_event, known, index, platform,
                       max_text, now_ms, stats)
    for _, item in heapq.merge(posts, comments, key=itemgetter(0)):
        yield item


# a row's event (all but ts and platform), or the reason it is skipped
_Builder = Callable[[dict[str, str], str, dict[str, _Post], set[str]], Record | str]


def _owner_skip(owner: str | None, known: set[str]) -> str | None:
    if owner is None:
        return "no_owner"
    return None if owner in known else "unknown_user"


def _post_event(
    a: dict[str, str], site: str, index: dict[str, _Post], known: set[str]
) -> Record | str:
    """The event of a Posts.xml row, or why it is skipped."""
    kind, owner = a.get("PostTypeId"), a.get("OwnerUserId")
    if kind not in (QUESTION, ANSWER):
        return "other_post_type"
    skip = _owner_skip(owner, known)
    if skip:
        return skip
    own = f"se:{site}:post:{a.get('Id', '')}"
    body = a.get("Body", "")
    urls = _unique(_HREF.findall(body))
    if kind == QUESTION:
        title = a.get("Title", "")
        text = f"{title}\n\n{_plain(body)}" if title else _plain(body)
        return {"event_id": own, "kind": "POST", "actor": owner, "conversation_id": own,
                "text": text, "urls": urls}
    question = index.get(a.get("ParentId", ""))
    if question is None or not question.is_question:
        return "no_parent"
    if question.owner is None:
        return "parent_no_owner"
    thread = f"se:{site}:post:{question.question}"
    return {"event_id": own, "kind": "REPLY", "actor": owner, "target": question.owner,
            "in_reply_to": thread, "conversation_id": thread, "text": _plain(body),
            "urls": urls}


def _comment_event(
    a: dict[str, str], site: str, index: dict[str, _Post], known: set[str]
) -> Record | str:
    """The event of a Comments.xml row, or why it is skipped."""
    author = a.get("UserId")
    skip = _owner_skip(author, known)
    if skip:
        return skip
    post = index.get(a.get("PostId", ""))
    if post is None:
        return "no_parent"
    if post.owner is None:
        return "parent_no_owner"
    text = a.get("Text", "")
    return {"event_id": f"se:{site}:comment:{a.get('Id', '')}", "kind": "COMMENT",
            "actor": author, "target": post.owner,
            "in_reply_to": f"se:{site}:post:{a.get('PostId')}",
            "conversation_id": f"se:{site}:post:{post.question}", "text": text,
            "urls": _unique(_BARE_URL.findall(text))}


def _events(
    path: Path, site: str, build: _Builder, known: set[str], index: dict[str, _Post],
    platform: str, max_text: int, now_ms: int, stats: Stats,
) -> Iterator[tuple[int, Item]]:
    """(sort time, item) for each row of one file; a rejection sorts with the row before it."""
    source = str(path)
    last_ts = 0
    for row in _rows(path):
        stats.rows += 1
        if isinstance(row, _Damage):
            yield last_ts, stats.reject(source, row.line, "malformed_xml", row.message, row.raw)
            return
        line, a = row
        event = build(a, site, index, known)
        if isinstance(event, str):
            stats.skipped[event] += 1
            continue
        created = a.get("CreationDate", "")
        ts = iso_ms(created)
        if ts is None:
            yield last_ts, stats.reject(
                source, line, "wrong_type", f"CreationDate {created[:40]!r} is not a time",
                _raw(a),
            )
            continue
        event["ts"], event["platform"] = ts, platform
        if len(event["text"]) > max_text:
            event["text"] = event["text"][:max_text]
            stats.truncated += 1
        result = validate_event(event, now_ms, max_text)
        last_ts = ts
        yield ts, stats.settle(result, source, line, b"" if isinstance(result, dict) else _raw(a))
