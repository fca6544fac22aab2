"""Access tokens of the HTTP door and the scope every door with an actor obeys.

A token is ``agb_<token_id>_<secret>``: the public id lets `verify` find the row
with one indexed read, and only a SHA-256 of the whole token is stored, so
nobody who can read the database (SQL, the web UI, an export) can use a token.
A `Scope` says which agent names a caller may act as, which topics it may see
and whether it may write; its checks raise `Forbidden` (``FORBIDDEN``) before
anything is stored. Callers without a token (stdio, a loopback HTTP server
without tokens, the local CLI) get `UNRESTRICTED`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from agent_bus.errors import Forbidden, InvalidArgument, TopicAmbiguous, TopicNotFound
from agent_bus.store import tokens as store
from agent_bus.timefmt import UNIT_SECONDS

T = TypeVar("T")

TOKEN_PREFIX = "agb"
MAX_LABEL = 100
MAX_SCOPE_ENTRIES = 100
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_TOKEN_ID = re.compile(r"^tk[0-9a-f]{8}$")


class Handle(Protocol):
    """What this module needs of a database handle (`Database` or the `Bus` facade)."""

    def read(self, fn: Callable[[Any], T]) -> T: ...

    def write(self, fn: Callable[[Any], T]) -> T: ...


@dataclass(frozen=True)
class Scope:
    """What one caller may do. ``None`` for agents/topics means "any"."""

    token_id: str | None = None
    label: str | None = None
    agents: frozenset[str] | None = None
    topics: frozenset[str] | None = None
    read_only: bool = False

    @property
    def restricted(self) -> bool:
        return self.agents is not None or self.topics is not None or self.read_only

    def _who(self) -> str:
        return f"token {self.token_id} ({self.label})" if self.token_id else "this caller"

    def check_agent(self, agent_name: object) -> None:
        """Refuse acting as an agent name outside the scope."""
        if self.agents is None:
            return
        name = agent_name.strip() if isinstance(agent_name, str) else agent_name
        if name not in self.agents:
            allowed = ", ".join(sorted(self.agents)) or "none"
            raise Forbidden(
                f"{self._who()} may not act as agent {name!r}; it may use: {allowed}.",
                agent_name=name,
            )

    def check_write(self, action: str) -> None:
        """Refuse any write (send, create, close) to a read-only token."""
        if self.read_only:
            raise Forbidden(f"{self._who()} is read-only: it may not {action}.")

    def allows(self, topic_id: str, name: str) -> bool:
        return self.topics is None or topic_id in self.topics or name in self.topics

    def allows_name(self, name: object) -> bool:
        return self.topics is None or (isinstance(name, str) and name.strip() in self.topics)

    def check_topic(self, topic_id: str, name: str) -> None:
        if not self.allows(topic_id, name):
            raise self._outside(topic_id)

    def check_new_topic(self, name: object) -> None:
        """``topic_create``: a write, and the name it creates must be in scope."""
        self.check_write("create topics")
        if self.topics is not None and not self.allows_name(name):
            raise Forbidden(
                f"{self._who()} may only create topics named: "
                f"{', '.join(sorted(self.topics))} (got {name!r})."
            )

    def _outside(self, ref: object) -> Forbidden:
        # The same answer whether or not the topic exists: a scoped token learns nothing
        # about topics outside its scope.
        return Forbidden(f"topic {ref!r} is outside the scope of {self._who()}.", topic=ref)

    def guard_topic_id(self, lookup: Callable[[str], Any], topic_id: object) -> None:
        """Refuse a ``topic_id`` outside the scope (``lookup`` returns a Topic or raises)."""
        if self.topics is None or (isinstance(topic_id, str) and topic_id in self.topics):
            return
        try:
            topic = lookup(topic_id)  # type: ignore[arg-type]
        except TopicNotFound:
            raise self._outside(topic_id) from None
        if topic.name not in self.topics:
            raise self._outside(topic_id)

    def guard_topic_name(self, resolve: Callable[[str], Any], name: object) -> None:
        """Refuse a topic name outside the scope (``resolve`` returns a Topic or raises)."""
        if self.topics is None or self.allows_name(name):
            return
        try:
            topic = resolve(name)  # type: ignore[arg-type]
        except TopicNotFound:
            raise self._outside(name) from None
        if topic.topic_id not in self.topics:
            raise self._outside(name)

    def guard_ref(self, resolve: Callable[[str], T], ref: object) -> T:
        """The topic a reference (id, id prefix or name) names, if inside the scope.

        ``resolve`` returns a Topic or raises `TopicNotFound`/`TopicAmbiguous`; with a
        topic limit, an unknown, ambiguous or outside reference is the same `Forbidden`.
        """
        if self.topics is None:
            return resolve(ref)  # type: ignore[arg-type]
        try:
            topic = resolve(ref)  # type: ignore[arg-type]
        except (TopicNotFound, TopicAmbiguous):
            raise self._outside(ref) from None
        if not self.allows(topic.topic_id, topic.name):  # type: ignore[attr-defined]
            raise self._outside(ref)
        return topic

    def visible(
        self, items: Iterable[T], *, id_of: Callable[[T], str], name_of: Callable[[T], str]
    ) -> list[T]:
        """Only the items whose topic is inside the scope (topic lists, search results)."""
        return [i for i in items if self.allows(id_of(i), name_of(i))]

    def as_claims(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "agents": None if self.agents is None else sorted(self.agents),
            "topics": None if self.topics is None else sorted(self.topics),
            "read_only": self.read_only,
        }

    @classmethod
    def from_claims(cls, token_id: str, claims: dict[str, Any]) -> Scope:
        agents, topics = claims.get("agents"), claims.get("topics")
        return cls(
            token_id=token_id,
            label=claims.get("label"),
            agents=None if agents is None else frozenset(agents),
            topics=None if topics is None else frozenset(topics),
            read_only=bool(claims.get("read_only")),
        )


UNRESTRICTED = Scope()


@dataclass(frozen=True)
class TokenInfo:
    """A stored token as `tokens list` shows it: never the secret, never its hash."""

    token_id: str
    label: str
    agents: list[str] | None
    topics: list[str] | None
    read_only: bool
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    def status(self, now: float | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or time.time()):
            return "expired"
        return "active"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.token_id,
            "label": self.label,
            "agents": self.agents,
            "topics": self.topics,
            "read_only": self.read_only,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
            "status": self.status(),
        }

    def scope(self) -> Scope:
        return Scope(
            token_id=self.token_id,
            label=self.label,
            agents=None if self.agents is None else frozenset(self.agents),
            topics=None if self.topics is None else frozenset(self.topics),
            read_only=self.read_only,
        )


def _info(row: dict[str, Any]) -> TokenInfo:
    return TokenInfo(
        token_id=row["token_id"],
        label=row["label"],
        agents=row["agents"],
        topics=row["topics"],
        read_only=row["read_only"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_duration(text: object) -> float:
    """Seconds of ``30d``, ``12h``, ``45m``, ``2w`` or ``90s``."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise InvalidArgument(
            f"expiry must look like 30d, 12h, 45m, 2w or 90s (got {text!r})", field="expires"
        )
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _clean_list(values: Iterable[object] | None, field: str) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > 200:
            raise InvalidArgument(f"{field} entries must be non-empty names", field=field)
        if value.strip() not in out:
            out.append(value.strip())
    if not out:
        return None
    if len(out) > MAX_SCOPE_ENTRIES:
        raise InvalidArgument(f"at most {MAX_SCOPE_ENTRIES} {field} per token", field=field)
    return out


def create(
    db: Handle,
    label: object,
    *,
    agents: Iterable[object] | None = None,
    topics: Iterable[object] | None = None,
    read_only: bool = False,
    expires_in: float | None = None,
) -> tuple[TokenInfo, str]:
    """Store a new token; returns its info and the secret (shown once, never stored).

    Raises:
        InvalidArgument: a blank or long label, a bad scope entry or expiry.
    """
    if not isinstance(label, str) or not label.strip() or len(label.strip()) > MAX_LABEL:
        raise InvalidArgument(f"label must be 1..{MAX_LABEL} characters", field="label")
    agent_list = _clean_list(agents, "agents")
    topic_list = _clean_list(topics, "topics")
    if expires_in is not None and expires_in <= 0:
        raise InvalidArgument("expiry must be in the future", field="expires")
    now = time.time()
    expires_at = None if expires_in is None else now + expires_in

    def tx(conn: Any) -> tuple[str, str]:
        while True:
            token_id = "tk" + secrets.token_hex(4)
            if store.get(conn, token_id) is None:
                break
        token = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
        store.insert(
            conn,
            token_id=token_id,
            label=label.strip(),
            secret_hash=hash_secret(token),
            agents=agent_list,
            topics=topic_list,
            read_only=read_only,
            created_at=now,
            expires_at=expires_at,
        )
        return token_id, token

    token_id, token = db.write(tx)
    info = TokenInfo(
        token_id, label.strip(), agent_list, topic_list, read_only, now, expires_at, None, None
    )
    return info, token


def list_tokens(db: Handle) -> list[TokenInfo]:
    return [_info(r) for r in db.read(store.all_tokens)]


def revoke(db: Handle, token_id: object) -> TokenInfo:
    """Revoke a token by its public id; the next request with it gets HTTP 401.

    Raises:
        InvalidArgument: no token has that id.
    """
    tid = token_id.strip() if isinstance(token_id, str) else ""
    now = time.time()

    def tx(conn: Any) -> dict[str, Any] | None:
        if not store.revoke(conn, tid, now):
            return None
        return store.get(conn, tid)

    row = db.write(tx)
    if row is None:
        raise InvalidArgument(
            f"no token with id {tid!r}; see `agent-bus tokens list`", field="token_id"
        )
    return _info(row)


def usable_count(db: Handle) -> int:
    """How many tokens could authenticate right now."""
    now = time.time()
    return db.read(lambda c: store.count_usable(c, now))


def token_id_of(token: str) -> str | None:
    """The public id inside a well-formed token, else None (no database access)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not _TOKEN_ID.match(parts[1]):
        return None
    return parts[1]


def verify(db: Handle, token: str, *, now: float | None = None) -> TokenInfo | None:
    """The token's info if it is ours, unrevoked and unexpired; None otherwise."""
    token_id = token_id_of(token)
    if token_id is None:
        return None
    row = db.read(lambda c: store.get(c, token_id))
    if row is None or not hmac.compare_digest(row["secret_hash"], hash_secret(token)):
        return None
    return _if_active(row, now)


def active(db: Handle, token_id: object, *, now: float | None = None) -> TokenInfo | None:
    """The token with this public id if it is still unrevoked and unexpired, else None.

    For a session that proved the whole secret once (the web UI's signed login cookie):
    re-read on every request, so revoking or expiring the token ends the session at once.
    """
    if not isinstance(token_id, str) or not _TOKEN_ID.match(token_id):
        return None
    row = db.read(lambda c: store.get(c, token_id))
    return None if row is None else _if_active(row, now)


def _if_active(row: Any, now: float | None) -> TokenInfo | None:
    info = _info(row)
    return info if info.status(now) == "active" else None


def touch(db: Handle, token_id: str) -> None:
    """Record use (the doors call this through `LastUse`, at most once a minute per token)."""
    now = time.time()
    db.write(lambda c: store.touch(c, token_id, now))


class LastUse:
    """When each token was last used, written at most once per ``every`` seconds.

    `tokens list` shows it; a door that checks a token on every request must not write
    on every request, and bookkeeping never fails a request.
    """

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._written: dict[str, float] = {}

    def due(self, token_id: str) -> bool:
        """True (and counted as written) when ``token_id`` has not been recorded lately."""
        now = time.monotonic()
        if now - self._written.get(token_id, -self.every) < self.every:
            return False
        self._written[token_id] = now
        return True

    @staticmethod
    def record(db: Handle, token_id: str) -> None:
        with contextlib.suppress(Exception):
            touch(db, token_id)
