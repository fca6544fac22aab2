"""Argument checks shared by every door, with the limits of the contract.

Each check raises `InvalidArgument` naming the field, so a bad call is refused
before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
import uuid
from typing import Any

from agent_bus.errors import InvalidArgument

MAX_AGENT_NAME = 64
MAX_TOPIC_NAME = 200
MAX_MESSAGE_TYPE = 32
MAX_CLIENT_MESSAGE_ID = 128
MAX_MESSAGE_ID = 128
MAX_SEARCH_LIMIT = 500


def now() -> float:
    """Wall-clock seconds, the unit of every stored time."""
    return time.time()


def new_id() -> str:
    """A short random id for topics and messages."""
    return uuid.uuid4().hex[:12]


def hash_token(token: str) -> str:
    """Reclaim tokens are stored only as this hash (nobody reading the DB can use them)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_text(value: object, field_name: str, *, allow_empty: bool = False) -> str:
    """A string that SQLite and JSON can carry: valid UTF-8, no NUL."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field_name} must be a string", field=field_name)
    if not allow_empty and not value.strip():
        raise InvalidArgument(f"{field_name} must be a non-empty string", field=field_name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"{field_name} is not valid UTF-8 text (it contains a lone surrogate)", field=field_name
        ) from None
    if "\x00" in value:
        raise InvalidArgument(f"{field_name} must not contain NUL characters", field=field_name)
    return value


def check_name(value: object, field_name: str, max_len: int) -> str:
    """A trimmed, printable, bounded name (agent names, topic names)."""
    text = check_text(value, field_name).strip()
    if len(text) > max_len:
        raise InvalidArgument(f"{field_name} must be <= {max_len} characters", field=field_name)
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidArgument(f"{field_name} must not contain control characters", field=field_name)
    return text


def check_int(value: object, field_name: str, *, minimum: int, maximum: int | None = None) -> int:
    """An int (not a bool) within bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field_name} must be an integer", field=field_name)
    if value < minimum:
        raise InvalidArgument(f"{field_name} must be >= {minimum}", field=field_name)
    if maximum is not None and value > maximum:
        raise InvalidArgument(f"{field_name} must be <= {maximum}", field=field_name)
    return value


def check_bool(value: object, field_name: str) -> bool:
    """A real boolean: JSON clients must not pass "true" or 1."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{field_name} must be a boolean", field=field_name)
    return value


def check_metadata(value: object, field_name: str, max_chars: int) -> dict[str, Any] | None:
    """A JSON object of bounded size (it is stored and returned with every read)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field_name} must be an object", field=field_name)
    try:
        size = len(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        raise InvalidArgument(f"{field_name} must be plain JSON", field=field_name) from None
    if size > max_chars:
        raise InvalidArgument(
            f"{field_name} is too large ({size} characters as JSON, at most {max_chars})",
            field=field_name,
        )
    return value
