"""Is this event (or snapshot) fit for the pipeline? The normalised record, or why not.

Called once per event on every path in (importers, Kafka decode), so it is plain Python with
early returns and builds one dict per event. Types are checked strictly: converting text
formats (ISO times, CSV cells) is the importers' job, so a string ``ts`` here is a wrong type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import schemas

Record = dict[str, Any]

_KIND_SYMBOLS: list[str] = next(
    f["type"]["symbols"] for f in schemas.schema(schemas.INTERACTION)["fields"]
    if f["name"] == "kind"
)
KINDS: frozenset[str] = frozenset(_KIND_SYMBOLS)
# every kind acts on someone except a plain post
NEEDS_TARGET: frozenset[str] = KINDS - {"POST"}

MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: older times are unit or parsing mistakes
MAX_AHEAD_MS = 86_400_000  # events may be at most a day ahead of the clock (skewed clocks)
MAX_TEXT = 10_000  # characters
RAW_LIMIT = 64 * 1024  # bytes of refused input kept in a dead letter
_MAX_LONG = 2**63 - 1


class Rejection(NamedTuple):
    """Why a record was refused: a dead-letter ``reason_code`` and one human sentence."""

    reason_code: str
    reason: str


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong(field: str, value: Any, expected: str) -> Rejection:
    return Rejection(
        "wrong_type", f"{field} must be {expected}, got {type(value).__name__} {_show(value)}"
    )


def _string_problem(field: str, value: str) -> Rejection | None:
    if "\x00" in value:
        return Rejection("nul_byte", f"{field} contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return Rejection("invalid_utf8", f"{field} is not valid UTF-8 (lone surrogate)")
    return None


def _missing(record: Mapping[str, Any], required: tuple[str, ...]) -> Rejection:
    names = ", ".join(f for f in required if record.get(f) is None)
    return Rejection("missing_field", f"required field(s) missing: {names}")


def _id(field: str, value: Any) -> Rejection | None:
    if type(value) is not str:
        return _wrong(field, value, "a string")
    if not value or value.isspace():
        return Rejection("empty_field", f"{field} is empty")
    return _string_problem(field, value)


def _time(field: str, ts: Any, now_ms: int) -> Rejection | None:
    if type(ts) is not int:
        return _wrong(field, ts, "an integer (ms since the epoch)")
    if ts < MIN_TS_MS:
        return Rejection(
            "ts_too_old", f"{field} {ts} is before 2000-01-01 (seconds instead of ms?)"
        )
    if ts > now_ms + MAX_AHEAD_MS:
        return Rejection(
            "ts_in_future", f"{field} {ts} is more than a day after now ({now_ms})"
        )
    return None


def _count(field: str, value: Any) -> Rejection | None:
    if type(value) is not int or value > _MAX_LONG:
        return _wrong(field, value, "an integer")
    if value < 0:
        return Rejection("negative_count", f"{field} is negative ({value})")
    return None


def _platform(value: Any) -> str | Rejection:
    if value is None:
        return ""
    if type(value) is not str:
        return _wrong("platform", value, "a string")
    return _string_problem("platform", value) or value


_EVENT_REQUIRED = ("event_id", "kind", "actor", "ts")


def _strings_problem(fields: dict[str, Any]) -> Rejection | None:
    """Slow path of validate_event: which string field has the wrong type, a NUL or bad UTF-8."""
    for field, value in fields.items():
        if field == "urls":
            if type(value) is not list:
                return _wrong("urls", value, "a list of strings")
            for url in value:
                if type(url) is not str:
                    return _wrong("urls item", url, "a string")
                problem = _string_problem("urls item", url)
                if problem:
                    return problem
        elif value is not None:
            if type(value) is not str:
                return _wrong(field, value, "a string or null")
            problem = _string_problem(field, value)
            if problem:
                return problem
    return None


def validate_event(
    event: Mapping[str, Any], now_ms: int, max_text: int = MAX_TEXT
) -> Record | Rejection:
    """The event with every schema field set (defaults filled, kind upper-cased, empty optional
    strings as None, unknown fields dropped), or the first Rejection found."""
    get = event.get
    event_id, kind, actor, ts = get("event_id"), get("kind"), get("actor"), get("ts")
    if event_id is None or kind is None or actor is None or ts is None:
        return _missing(event, _EVENT_REQUIRED)
    problem = _id("event_id", event_id) or _id("actor", actor) or _time("ts", ts, now_ms)
    if problem:
        return problem
    if type(kind) is not str:
        return _wrong("kind", kind, "a string")
    if kind not in KINDS:
        upper = kind.upper()
        if upper not in KINDS:
            return Rejection(
                "bad_kind", f"kind {_show(kind)} is not one of {', '.join(_KIND_SYMBOLS)}"
            )
        kind = upper

    target, in_reply_to = get("target"), get("in_reply_to")
    conversation_id, text = get("conversation_id"), get("text")
    urls, platform = get("urls"), get("platform")
    if urls is None:
        urls = []
    if platform is None:
        platform = ""
    # Fast path: a cheap type test per field, then one NUL/UTF-8 scan over all strings at
    # once; _strings_problem names the culprit only when something is off.
    if (
        (target is None or type(target) is str)
        and (in_reply_to is None or type(in_reply_to) is str)
        and (conversation_id is None or type(conversation_id) is str)
        and (text is None or type(text) is str)
        and type(platform) is str
        and type(urls) is list
        and (not urls or all(type(url) is str for url in urls))
    ):
        joined = "".join(
            (target or "", in_reply_to or "", conversation_id or "", text or "", platform, *urls)
        )
        clean = "\x00" not in joined and (joined.isascii() or not _string_problem("", joined))
    else:
        clean = False
    if not clean:
        problem = _strings_problem(
            {"target": target, "in_reply_to": in_reply_to, "conversation_id": conversation_id,
             "text": text, "platform": platform, "urls": urls}
        )
        if problem:
            return problem
    target, in_reply_to, conversation_id, text = (
        target or None, in_reply_to or None, conversation_id or None, text or None
    )
    if target is None and kind in NEEDS_TARGET:
        return Rejection("missing_target", f"a {kind} needs a target")
    if text is not None and len(text) > max_text:
        return Rejection(
            "text_too_long", f"text has {len(text)} characters, more than the limit {max_text}"
        )

    followers, following, posts = get("followers"), get("following"), get("posts")
    if followers is not None or following is not None or posts is not None:
        problem = (
            (followers is not None and _count("followers", followers))
            or (following is not None and _count("following", following))
            or (posts is not None and _count("posts", posts))
            or None
        )
        if problem:
            return problem
    return {
        "event_id": event_id, "kind": kind, "actor": actor, "target": target, "ts": ts,
        "in_reply_to": in_reply_to, "conversation_id": conversation_id, "text": text,
        "urls": urls, "platform": platform,
        "followers": followers, "following": following, "posts": posts,
    }


_SNAPSHOT_REQUIRED = ("snapshot_id", "account", "ts", "followers", "following", "posts")


def validate_snapshot(snapshot: Mapping[str, Any], now_ms: int) -> Record | Rejection:
    """The account snapshot with every schema field set, or the first Rejection found."""
    get = snapshot.get
    if any(get(f) is None for f in _SNAPSHOT_REQUIRED):
        return _missing(snapshot, _SNAPSHOT_REQUIRED)
    snapshot_id, account, ts = snapshot["snapshot_id"], snapshot["account"], snapshot["ts"]
    problem = (
        _id("snapshot_id", snapshot_id)
        or _id("account", account)
        or _time("ts", ts, now_ms)
        or _count("followers", get("followers"))
        or _count("following", get("following"))
        or _count("posts", get("posts"))
    )
    if problem:
        return problem
    created_at = get("created_at")
    if created_at is not None:
        if type(created_at) is not int:
            return _wrong("created_at", created_at, "an integer (ms since the epoch) or null")
        if created_at < 0:
            return Rejection("ts_too_old", f"created_at {created_at} is before 1970")
        if created_at > ts + MAX_AHEAD_MS:
            return Rejection(
                "ts_in_future", f"created_at {created_at} is after the snapshot time {ts}"
            )
    platform = _platform(get("platform"))
    if type(platform) is Rejection:
        return platform
    return {
        "snapshot_id": snapshot_id, "account": account, "ts": ts,
        "followers": get("followers"), "following": get("following"), "posts": get("posts"),
        "created_at": created_at, "platform": platform,
    }


def dead_letter(
    source: str,
    line: int | None,
    rejection: Rejection,
    raw: bytes,
    schema: str,
    now_ms: int,
    raw_limit: int = RAW_LIMIT,
) -> Record:
    """A dead-letter record (schema ``dead-letter``) for refused input, raw bytes truncated."""
    return {
        "source": source, "line": line, "reason_code": rejection.reason_code,
        "reason": rejection.reason, "raw": raw[:raw_limit], "raw_size": len(raw),
        "schema": schema, "ts": now_ms,
    }
