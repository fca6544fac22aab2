"""The reference docs cover everything users can call or set (sqlite-utils' docs test, our way).

Tools come from a real `tools/list`, commands from the typer app, settings from `BusSettings`,
prompts from the shipped templates and codes from `agent_bus.errors` and from every module
that spells a code out (doors translate at their edge): adding any of them without
documenting it fails here.
"""

from __future__ import annotations

import ast
import functools
import re
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest
import typer

from agent_bus import errors, prompts
from agent_bus.cli import app
from agent_bus.settings import BusSettings

from conftest import REPO, spawn

DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"
# Present in every tool's output schema; documented once, in the common section.
COMMON_RESULT_FIELDS = {"error", "warnings"}


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@functools.cache
def listed_tools() -> dict[str, Any]:
    """`tools/list` of a real server process (collected once, before any test runs)."""

    async def fetch() -> dict[str, Any]:
        # Runs at collection, before conftest isolates each test: isolate this server here.
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            async with spawn(
                Path(tmp) / "bus.sqlite", HOME=str(home), LLM_USER_PATH=str(Path(tmp) / "llm")
            ) as session:
                return {t.name: t for t in (await session.list_tools()).tools}

    return anyio.run(fetch)


def sections(path: Path) -> dict[str, str]:
    """Level-2 sections of a markdown file by heading text (code fences ignored)."""
    found: dict[str, str] = {}
    current: str | None = None
    in_fence = False
    for line in read(path).splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            current = line[3:].strip()
            found[current] = ""
        elif current is not None:
            found[current] += line + "\n"
    return found


def tool_section(name: str) -> str:
    for title, body in sections(REFERENCE / "tools.md").items():
        if re.fullmatch(rf"`{name}(\(.*\))?`", title):
            return body
    raise AssertionError(f"docs/reference/tools.md has no '## `{name}`' section")


@pytest.mark.parametrize("name", sorted(listed_tools()))
def test_every_tool_has_a_section_in_the_tools_reference(name: str) -> None:
    tool_section(name)


@pytest.mark.parametrize("name", sorted(listed_tools()))
def test_every_tool_argument_and_result_field_is_documented(name: str) -> None:
    body = tool_section(name)
    tool = listed_tools()[name]
    arguments = set(tool.input_schema.get("properties", {}))
    fields = set((tool.output_schema or {}).get("properties", {})) - COMMON_RESULT_FIELDS
    missing = sorted(f for f in arguments | fields if f"`{f}`" not in body)
    assert not missing, f"{name}: undocumented {missing}"


def test_common_result_fields_are_documented_once() -> None:
    text = read(REFERENCE / "tools.md")
    for field in COMMON_RESULT_FIELDS:
        assert f"`{field}`" in text


def _commands() -> list[tuple[str, Any]]:
    """(path, click command) for every command and group, hidden `cli` aliases excluded."""
    found: list[tuple[str, Any]] = []

    def walk(group: Any, prefix: str) -> None:
        for name, command in sorted(group.commands.items()):
            if not prefix and name == "cli":
                continue
            path = f"{prefix}{name}"
            found.append((path, command))
            if hasattr(command, "commands"):
                walk(command, path + " ")

    walk(typer.main.get_command(app), "")
    return found


COMMANDS = _commands()


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_cli_command_is_in_the_cli_reference(path: str, command: Any) -> None:
    text = read(REFERENCE / "cli.md")
    as_code = re.search(rf"`{re.escape(path)}[ `\[]", text)
    as_heading = re.search(rf"^#+ .*\b{re.escape(path)}\b", text, re.M)
    assert as_code or as_heading, f"`agent-bus {path}` is not in docs/reference/cli.md"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_cli_command_has_help_text(path: str, command: Any) -> None:
    assert (command.help or "").strip(), f"`agent-bus {path}` has no help text"


def test_the_reference_alias_group_is_excluded_but_the_real_commands_are_walked() -> None:
    paths = {p for p, _ in COMMANDS}
    assert "cli" not in paths and not any(p.startswith("cli ") for p in paths)
    assert {"topics list", "db wipe", "skills install", "mcp-config"} <= paths


@pytest.mark.parametrize("field", sorted(BusSettings.model_fields))
def test_every_setting_is_in_the_settings_reference(field: str) -> None:
    text = read(REFERENCE / "settings.md")
    assert f"`AGENT_BUS_{field.upper()}`" in text


@pytest.mark.parametrize("name", sorted(prompts.load_templates()))
def test_every_prompt_is_in_the_prompts_reference(name: str) -> None:
    template = prompts.load_templates()[name]
    text = read(REFERENCE / "prompts.md")
    assert f"`{name}`" in text
    for argument in template.arguments:
        assert f"`{argument.name}`" in text, f"{name}: argument {argument.name}"


# Sources whose codes never reach a user: the embedding service's private socket protocol
# (its replies become log lines or an INTERNAL_ERROR in the client, never a code of their own).
PRIVATE_PROTOCOL = {"agent_bus/embeddings/daemon.py", "agent_bus/embeddings/client.py"}
CODE = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*")


def _constant_code(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if CODE.fullmatch(node.value):
            return node.value
    return None


def _emitted_codes(tree: ast.AST) -> set[str]:
    """String codes a module hands out: ``code = "X"``, ``code="X"``, ``{"code": "X"}``, a
    ``code`` parameter's default, and the first argument of a ``…fail…``/``…error…`` call."""
    found: list[str | None] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                found.append(_constant_code(node.value))
        elif isinstance(node, ast.keyword) and node.arg == "code":
            found.append(_constant_code(node.value))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code":
                    found.append(_constant_code(value))
        elif isinstance(node, ast.arguments):
            params = node.posonlyargs + node.args
            defaults = [None] * (len(params) - len(node.defaults)) + list(node.defaults)
            pairs = list(zip(params, defaults, strict=True))
            pairs += list(zip(node.kwonlyargs, node.kw_defaults, strict=True))
            found += [_constant_code(d) for a, d in pairs if a.arg == "code"]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if re.search(r"fail|error", name, re.I):
                found.append(_constant_code(node.args[0]))
    return {code for code in found if code}


def _error_codes() -> dict[str, str]:
    """Every code a door can emit -> where it comes from: the `BusError` classes, and the
    codes written out in any module (doors translate at their edge, e.g. the CLI's
    ``ABORTED``, the web's ``NOT_FOUND``; new doors are scanned wherever they live)."""
    codes = {code: "agent_bus/errors.py" for code in errors.ERROR_CODES}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.BusError):
            codes[value.code] = "agent_bus/errors.py"
    for package in ("agent_bus", "datasette_plugins"):
        for path in sorted((REPO / package).rglob("*.py")):
            rel = str(path.relative_to(REPO))
            if rel in PRIVATE_PROTOCOL:
                continue
            for code in _emitted_codes(ast.parse(read(path), rel)):
                codes.setdefault(code, rel)
    return codes


ERROR_CODES = _error_codes()


def test_the_code_scan_sees_codes_that_only_a_door_spells_out() -> None:
    assert ERROR_CODES["NOT_FOUND"].startswith("datasette_plugins/")
    assert ERROR_CODES["ABORTED"] == "agent_bus/cli/__init__.py"
    assert ERROR_CODES["UNAVAILABLE"] == "agent_bus/cli/_common.py"
    assert ERROR_CODES["SEMANTIC_UNAVAILABLE"] == "agent_bus/search/service.py"


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_error_code_is_in_the_errors_reference(code: str) -> None:
    text = read(REFERENCE / "errors.md")
    as_heading = re.search(rf"^#+ `{code}`", text, re.M)
    as_entry = re.search(rf"^(- |\| )`{code}`", text, re.M)  # short lists and the warnings
    assert as_heading or as_entry, f"{code} (from {ERROR_CODES[code]}) is not in errors.md"


MARKDOWN = sorted(DOCS.rglob("*.md"))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub-style heading anchors of a markdown file."""
    anchors: set[str] = set()
    in_fence = False
    for line in read(path).splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(DOCS)) for p in MARKDOWN])
def test_relative_links_in_docs_resolve(path: Path) -> None:
    broken = []
    for match in LINK.finditer(read(path)):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(target)
    assert not broken, f"{path.relative_to(REPO)}: broken links {broken}"


def test_docs_index_links_every_page() -> None:
    index = read(DOCS / "README.md")
    for page in MARKDOWN:
        if page.name != "README.md":
            assert str(page.relative_to(DOCS)) in index, page


CONFLICT = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}


def test_no_file_keeps_merge_conflict_markers() -> None:
    """A merge that went wrong once left `<<<<<<< HEAD` in a reference page."""
    marked = []
    for path in REPO.rglob("*"):
        if SKIP_DIRS.intersection(path.relative_to(REPO).parts) or not path.is_file():
            continue
        if path.suffix not in {".md", ".py", ".toml", ".html", ".js", ".css", ".json", ".yaml"}:
            continue
        if CONFLICT.search(path.read_text(encoding="utf-8", errors="replace")):
            marked.append(str(path.relative_to(REPO)))
    assert not marked, marked
