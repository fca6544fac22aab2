"""MCP prompts as a client sees them: `prompts/list` and `prompts/get` against a real process."""

from __future__ import annotations

import re

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from agent_bus import prompts

from conftest import call, spawn

pytestmark = pytest.mark.anyio

SHIPPED = prompts.load_templates()
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


async def test_prompts_list_shows_every_shipped_template_with_typed_arguments(db_path):
    async with spawn(db_path) as s:
        listed = {p.name: p for p in (await s.list_prompts()).prompts}
    assert set(listed) == set(SHIPPED)
    for name, template in SHIPPED.items():
        prompt = listed[name]
        assert prompt.description == template.description
        assert prompt.title == template.title
        declared = [(a.name, a.description, a.required) for a in template.arguments]
        served = [(a.name, a.description, bool(a.required)) for a in prompt.arguments or []]
        assert served == declared, name


async def test_every_listed_prompt_renders_all_its_arguments_through_prompts_get(db_path):
    async with spawn(db_path) as s:
        listed = (await s.list_prompts()).prompts
        assert listed, "the server lists no prompts"
        for prompt in listed:
            args = {a.name: f"<{prompt.name}:{a.name}>" for a in prompt.arguments or []}
            result = await s.get_prompt(prompt.name, args)
            assert len(result.messages) == 1, prompt.name
            message = result.messages[0]
            assert message.role == "user"
            text = message.content.text
            for value in args.values():
                assert value in text, (prompt.name, value)
            assert not PLACEHOLDER.search(text), (prompt.name, PLACEHOLDER.findall(text))
            assert "{{" not in text and "}}" not in text
            assert text == SHIPPED[prompt.name].render(args)


async def test_optional_arguments_fall_back_to_their_documented_defaults(db_path):
    async with spawn(db_path) as s:
        review = await s.get_prompt("start_review", {"topic": "review/x", "base_ref": "main"})
        rereview = await s.get_prompt("rereview", {"topic": "review/x"})
    review_text = review.messages[0].content.text
    assert "Focus: correctness, tests and error handling" in review_text
    assert "git diff --stat main...HEAD" in review_text
    assert "cursor_reset(topic_id=<topic_id>, last_seq=0)" in rereview.messages[0].content.text


async def test_missing_required_argument_is_rejected_as_invalid_params_naming_it(db_path):
    async with spawn(db_path) as s:
        for name, template in SHIPPED.items():
            full = {a.name: "value" for a in template.arguments}
            for arg in (a for a in template.arguments if a.required):
                partial = {k: v for k, v in full.items() if k != arg.name}
                with pytest.raises(MCPError) as info:
                    await s.get_prompt(name, partial)
                assert info.value.code == INVALID_PARAMS, (name, arg.name)
                message = info.value.message
                assert "missing required argument" in message, message
                assert arg.name in message and name in message
                assert arg.description in message  # says what the argument is for
        # The errors did not hurt the session: it keeps answering tools and prompts.
        assert (await call(s, "ping"))["ok"] is True
        assert (await s.get_prompt("check_messages", {"topic": "t"})).messages


async def test_blank_required_argument_counts_as_missing_over_stdio(db_path):
    async with spawn(db_path) as s:
        with pytest.raises(MCPError) as info:
            await s.get_prompt("implement_with_review", {"topic": "t", "task": "  "})
    assert info.value.code == INVALID_PARAMS
    assert "task" in info.value.message


async def test_unknown_argument_and_unknown_prompt_are_errors_not_crashes(db_path):
    async with spawn(db_path) as s:
        with pytest.raises(MCPError) as unknown_arg:
            await s.get_prompt("check_messages", {"topic": "t", "colour": "red"})
        assert unknown_arg.value.code == INVALID_PARAMS
        assert "colour" in unknown_arg.value.message
        with pytest.raises(MCPError) as unknown_prompt:
            await s.get_prompt("no_such_prompt", {})
        assert unknown_prompt.value.code == INVALID_PARAMS
        assert "no_such_prompt" in unknown_prompt.value.message
        assert (await call(s, "ping"))["ok"] is True
