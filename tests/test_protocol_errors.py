"""Protocol-level mistakes of a client: -32602 with a clear message, no traceback, session alive."""

from __future__ import annotations

import pytest

from rawmcp import RawServer

INVALID_PARAMS = -32602

CASES = [
    ("prompts/get", {"name": "no_such_prompt"}, "no_such_prompt"),
    ("prompts/get", {"name": "check_messages", "arguments": {"topic": 5}}, "arguments.topic"),
    ("resources/read", {"uri": "agent-bus://nowhere"}, "agent-bus://nowhere"),
    ("resources/read", {}, "uri"),
    ("tools/list", {"cursor": "page-2"}, "cursor"),
    ("prompts/list", {"cursor": "page-2"}, "cursor"),
    ("resources/list", {"cursor": "page-2"}, "cursor"),
    ("resources/templates/list", {"cursor": "page-2"}, "cursor"),
    ("tools/call", {"name": 5, "arguments": {}}, "name"),
    ("tools/call", {"name": "ping", "arguments": "not an object"}, "arguments"),
]


@pytest.mark.parametrize(("method", "params", "named"), CASES)
def test_client_mistakes_are_invalid_params_naming_the_culprit(
    db_path, tmp_path, method, params, named
):
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("wb") as stderr:
        server = RawServer(db_path, stderr=stderr)
        try:
            reply = server.request(method, params)
            assert reply["error"]["code"] == INVALID_PARAMS, reply
            assert named in reply["error"]["message"], reply
            assert server.tool("ping")["structuredContent"]["ok"] is True
        finally:
            server.close()
    assert "Traceback" not in stderr_path.read_text()
