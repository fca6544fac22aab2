"""A token's scope applied to MCP tool calls (HTTP door; stdio callers are unrestricted).

`guard_call` runs before a tool, from its arguments: acting as another agent
name, naming a topic outside the scope, or writing with a read-only token is
refused with ``FORBIDDEN`` before anything is stored. Lists (`topic_list`,
`messages_search`) are filtered in the tools with `caller_scope().visible`.
"""

from __future__ import annotations

from typing import Any

from agent_bus.service.access import UNRESTRICTED, Scope

SCOPE_CLAIM = "agent_bus_scope"

# Tools whose ``topic_id`` argument names the topic they act on.
_TOPIC_ID_TOOLS = ("topic_close", "topic_presence", "cursor_reset", "sync", "messages_search")


def caller_scope() -> Scope:
    """The scope of the token that made the current request; unrestricted without one."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    token = get_access_token()
    if token is None or not token.claims or SCOPE_CLAIM not in token.claims:
        return UNRESTRICTED
    return Scope.from_claims(token.client_id, token.claims[SCOPE_CLAIM])


async def guard_call(bus: Any, name: str, args: dict[str, Any], scope: Scope) -> None:
    """Raise `Forbidden` when ``scope`` does not cover this call.

    Arguments of the wrong type are left to the tool, which answers INVALID_ARGUMENT.
    """
    if not scope.restricted:
        return

    def resolve(topic_name: str) -> Any:
        return bus.topic_resolve(topic_name, bool(args.get("allow_closed", False)))

    agent = args.get("agent_name")
    if name in ("topic_join", "sync", "cursor_reset") and agent is not None:
        scope.check_agent(agent)
    if name == "topic_create":
        scope.check_new_topic(args.get("name"))
    elif name == "topic_close":
        scope.check_write("close topics")
    elif name == "sync" and args.get("outbox") not in (None, [], {}, ""):
        scope.check_write("send messages")
    if name in _TOPIC_ID_TOOLS and args.get("topic_id") is not None:
        await bus.run(scope.guard_topic_id, bus.get_topic, args["topic_id"])
    if name == "topic_join":
        if args.get("topic_id") is not None:
            await bus.run(scope.guard_topic_id, bus.get_topic, args["topic_id"])
        elif args.get("name") is not None:
            await bus.run(scope.guard_topic_name, resolve, args["name"])
    if name == "topic_resolve" and args.get("name") is not None:
        await bus.run(scope.guard_topic_name, resolve, args["name"])
