"""Prompt templates load, validate and render; broken templates fail at load time."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import yaml
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from agent_bus import frontmatter, prompts
from agent_bus.resources import data_dir

TEMPLATES = prompts.load_templates()

VALID = """---
name: demo
description: A demo prompt.
arguments:
  - name: topic
    description: The topic.
    required: true
  - name: focus
    description: What to look at.
    default: tests
---
Topic {topic}, focus {focus}, JSON {{"a": 1}}.
"""


def write(directory: Path, filename: str, text: str) -> Path:
    path = directory / filename
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_prompts_are_shipped_with_their_arguments() -> None:
    expected = {
        "start_review": {"topic", "base_ref", "focus"},
        "implement_with_review": {"topic", "task"},
        "rereview": {"topic", "since_seq"},
        "handoff": {"topic", "summary"},
        "check_messages": {"topic"},
    }
    for name, args in expected.items():
        assert {a.name for a in TEMPLATES[name].arguments} == args
        assert TEMPLATES[name].arguments[0].required  # topic comes first and is required


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_shipped_template_renders_each_argument_value(name: str) -> None:
    template = TEMPLATES[name]
    args = {a.name: f"<<{a.name}-value>>" for a in template.arguments}
    text = prompts.render(name, args)
    for value in args.values():
        assert value in text
    assert "{{" not in text and "}}" not in text


@pytest.mark.parametrize("path", sorted(data_dir("prompts").glob("*.md")), ids=lambda p: p.stem)
def test_shipped_template_front_matter_reads_the_same_with_a_real_yaml_parser(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    meta, _ = frontmatter.parse(text)
    assert meta == yaml.safe_load(text.split("---\n")[1])


def test_missing_required_argument_raises_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"missing required argument\(s\): base_ref"):
        prompts.render("start_review", {"topic": "review/x"})


def test_blank_required_argument_counts_as_missing() -> None:
    with pytest.raises(prompts.PromptArgumentError, match="task"):
        prompts.render("implement_with_review", {"topic": "t", "task": "   "})


def test_unknown_argument_is_rejected_with_the_accepted_names() -> None:
    with pytest.raises(prompts.PromptArgumentError, match=r"unknown argument\(s\): colour.*topic"):
        prompts.render("check_messages", {"topic": "t", "colour": "red"})


def test_unknown_prompt_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="check_messages"):
        prompts.render("no_such_prompt", {})


def test_optional_argument_falls_back_to_its_default_and_braces_unescape(tmp_path: Path) -> None:
    write(tmp_path, "demo.md", VALID)
    text = prompts.render("demo", {"topic": "t1"}, directory=tmp_path)
    assert text == 'Topic t1, focus tests, JSON {"a": 1}.\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (VALID.replace("{focus}", "{fokus}"), "unknown placeholder"),
        (VALID.replace("focus {focus}, ", ""), "never used"),
        (VALID.replace("description: A demo prompt.\n", ""), "description"),
        (VALID.replace("name: demo", "name: Demo-Prompt"), "name"),
        (VALID.replace("name: demo\n", "name: demo\nauthor: me\n"), "unknown front-matter"),
        (VALID.replace('{{"a": 1}}', '{"a": 1}'), "lone"),
        (VALID.replace("    default: tests", "    required: maybe"), "true or false"),
        (VALID.replace("    default: tests", "    default: tests\n    required: true"), "default"),
        (VALID.replace("---\nTopic", "Topic"), "not closed"),
        (VALID.split("---\n", 2)[0] + "---\n" + VALID.split("---\n", 2)[1] + "---\n\n", "empty"),
    ],
    ids=[
        "unknown-placeholder",
        "unused-argument",
        "missing-description",
        "bad-name",
        "unknown-field",
        "lone-brace",
        "non-boolean-required",
        "default-on-required",
        "unclosed-front-matter",
        "empty-body",
    ],
)
def test_broken_template_fails_loading_with_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    write(tmp_path, "demo.md", text)
    with pytest.raises(prompts.PromptTemplateError, match=problem) as info:
        prompts.load_templates(tmp_path)
    assert "demo.md" in str(info.value)


def test_two_templates_with_one_name_fail_loading(tmp_path: Path) -> None:
    write(tmp_path, "a.md", VALID)
    write(tmp_path, "b.md", VALID)
    with pytest.raises(prompts.PromptTemplateError, match="already used by .*a.md"):
        prompts.load_templates(tmp_path)


def test_registered_prompts_list_typed_arguments_and_render_over_mcp() -> None:
    server = MCPServer("prompts-test")
    names = prompts.register_prompts(server)
    assert names == sorted(TEMPLATES)

    async def scenario() -> None:
        async with Client(server) as client:
            listed = {p.name: p for p in (await client.list_prompts()).prompts}
            assert set(listed) == set(TEMPLATES)
            args = {a.name: a.required for a in listed["start_review"].arguments or []}
            assert args == {"topic": True, "base_ref": True, "focus": False}
            result = await client.get_prompt(
                "start_review", {"topic": "review/x", "base_ref": "main"}
            )
            text = result.messages[0].content.text
            assert 'topic_create(name="review/x", mode="reuse")' in text
            assert "Focus: correctness, tests and error handling" in text
            with pytest.raises(MCPError) as info:
                await client.get_prompt("start_review", {"topic": "review/x"})
            assert info.value.code == INVALID_PARAMS
            assert "base_ref" in info.value.message

    anyio.run(scenario)
