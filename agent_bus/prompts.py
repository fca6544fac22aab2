"""MCP prompt templates: load, validate, render, and serve them (``prompts/list``, ``prompts/get``).

Templates are markdown files in ``prompts/`` (see :func:`agent_bus.resources.data_dir`), each
with front matter::

    ---
    name: start_review                  # [a-z][a-z0-9_]*, unique across files
    title: Start a review               # optional
    description: What the prompt is for.
    arguments:                          # optional
      - name: topic
        description: Topic name to review in.
        required: true                  # optional, default false
      - name: focus
        description: What to look at first.
        default: correctness and tests  # optional; only for optional arguments
    ---
    Body with {topic} and {focus}. Literal braces are written {{ and }}.

A template is validated when it is loaded: required fields, known fields only, a declared
argument for every placeholder and a placeholder for every declared argument, no duplicate
names. A broken template therefore fails the test-suite and the server start, never a user's
``prompts/get``.

Public API:
    load_templates(directory: Path | None = None) -> dict[str, PromptTemplate]
    render(name: str, args: Mapping[str, object] | None = None, *, directory=None) -> str
    register_prompts(server: MCPServer, directory: Path | None = None) -> list[str]
Errors: PromptTemplateError (a broken template file), PromptArgumentError (a ValueError:
missing required or unknown arguments; over MCP it becomes JSON-RPC INVALID_PARAMS).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_bus import frontmatter
from agent_bus.resources import data_dir

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
# ``{{`` / ``}}`` are literal braces, ``{identifier}`` a placeholder, any other brace an error.
_TOKEN_RE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")
_TEMPLATE_FIELDS = {"name", "title", "description", "arguments"}
_ARGUMENT_FIELDS = {"name", "description", "required", "default"}


class PromptTemplateError(Exception):
    """A prompt template file is malformed; the message names the file and the problem."""


class PromptArgumentError(ValueError):
    """Arguments given to a prompt are missing (required ones) or unknown."""


@dataclass(frozen=True)
class PromptArgumentSpec:
    """One declared argument of a prompt template."""

    name: str
    description: str
    required: bool = False
    default: str | None = None


@dataclass(frozen=True)
class PromptTemplate:
    """A validated prompt template; :meth:`render` fills in its placeholders."""

    name: str
    description: str
    arguments: tuple[PromptArgumentSpec, ...]
    body: str
    path: Path
    title: str | None = None

    def resolve_arguments(self, args: Mapping[str, object] | None) -> dict[str, str]:
        """Return the value of every argument, defaults applied.

        Blank strings count as absent: some MCP clients send every declared argument, empty.

        Raises:
            PromptArgumentError: a required argument is absent or blank, or an argument is
                not declared by this template. The message names them.
        """
        given = {k: "" if v is None else str(v) for k, v in (args or {}).items()}
        declared = {a.name for a in self.arguments}
        unknown = sorted(set(given) - declared)
        if unknown:
            expected = ", ".join(a.name for a in self.arguments) or "none"
            raise PromptArgumentError(
                f"prompt {self.name!r} got unknown argument(s): {', '.join(unknown)} "
                f"(it takes: {expected})"
            )
        missing = [a for a in self.arguments if a.required and not given.get(a.name, "").strip()]
        if missing:
            listing = "; ".join(f"{a.name} ({a.description})" for a in missing)
            raise PromptArgumentError(
                f"prompt {self.name!r} is missing required argument(s): {listing}"
            )
        values: dict[str, str] = {}
        for arg in self.arguments:
            value = given.get(arg.name, "")
            values[arg.name] = value if value.strip() else (arg.default or "")
        return values

    def render(self, args: Mapping[str, object] | None = None) -> str:
        """Return the body with every placeholder replaced.

        Raises:
            PromptArgumentError: see :meth:`resolve_arguments`.
        """
        values = self.resolve_arguments(args)

        def substitute(match: re.Match[str]) -> str:
            token = match.group(0)
            if token in ("{{", "}}"):
                return token[0]
            return values[match.group(1)]

        return _TOKEN_RE.sub(substitute, self.body)


def load_template(path: Path) -> PromptTemplate:
    """Load and validate one template file.

    Raises:
        PromptTemplateError: the file is unreadable or malformed (see the module docstring).
    """
    try:
        meta, body = frontmatter.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, frontmatter.FrontMatterError) as exc:
        raise PromptTemplateError(f"{path}: {exc}") from exc

    def fail(message: str) -> PromptTemplateError:
        return PromptTemplateError(f"{path}: {message}")

    unknown = sorted(set(meta) - _TEMPLATE_FIELDS)
    if unknown:
        raise fail(f"unknown front-matter field(s): {', '.join(unknown)}")
    name, description, title = meta.get("name"), meta.get("description"), meta.get("title")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise fail("front matter needs 'name' matching [a-z][a-z0-9_]*")
    if not isinstance(description, str) or not description.strip():
        raise fail("front matter needs a non-empty 'description'")
    if title is not None and not isinstance(title, str):
        raise fail("'title' must be a string")
    arguments = _parse_arguments(meta.get("arguments", []), fail)
    if not body.strip():
        raise fail("the template body is empty")

    used: set[str] = set()
    for lineno, line in enumerate(body.splitlines(), start=1):
        for match in _TOKEN_RE.finditer(line):
            token = match.group(0)
            if token in ("{{", "}}"):
                continue
            if match.group(1) is None:
                raise fail(f"body line {lineno}: lone {token!r}; write {token * 2} for a brace")
            used.add(match.group(1))
    declared = {a.name for a in arguments}
    if used - declared:
        raise fail(f"unknown placeholder(s): {', '.join(sorted(used - declared))}")
    if declared - used:
        raise fail(f"argument(s) never used in the body: {', '.join(sorted(declared - used))}")
    return PromptTemplate(name, description.strip(), arguments, body, path, title)


def _parse_arguments(raw: object, fail: Any) -> tuple[PromptArgumentSpec, ...]:
    if not isinstance(raw, list):
        raise fail("'arguments' must be a list")
    specs: list[PromptArgumentSpec] = []
    for index, item in enumerate(raw, start=1):
        where = f"argument {index}"
        if not isinstance(item, dict):
            raise fail(f"{where} must be a mapping")
        unknown = sorted(set(item) - _ARGUMENT_FIELDS)
        if unknown:
            raise fail(f"{where}: unknown field(s): {', '.join(unknown)}")
        name, description = item.get("name"), item.get("description")
        required, default = item.get("required", False), item.get("default")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise fail(f"{where}: 'name' must match [a-z][a-z0-9_]*")
        if not isinstance(description, str) or not description.strip():
            raise fail(f"{where} ({name}): needs a non-empty 'description'")
        if not isinstance(required, bool):
            raise fail(f"{where} ({name}): 'required' must be true or false")
        if default is not None and (required or not isinstance(default, str)):
            raise fail(f"{where} ({name}): 'default' must be a string, on optional arguments only")
        if any(s.name == name for s in specs):
            raise fail(f"duplicate argument {name!r}")
        specs.append(PromptArgumentSpec(name, description.strip(), required, default))
    return tuple(specs)


def load_templates(directory: Path | None = None) -> dict[str, PromptTemplate]:
    """Load every ``*.md`` template in ``directory`` (default: the shipped ``prompts/``).

    Raises:
        PromptTemplateError: a template is malformed, or two files declare the same name.
    """
    if directory is None:
        return dict(_shipped_templates())
    return _load_dir(directory)


@functools.cache
def _shipped_templates() -> dict[str, PromptTemplate]:
    # Shipped files do not change while a process runs; load them once per process.
    return _load_dir(data_dir("prompts"))


def _load_dir(directory: Path) -> dict[str, PromptTemplate]:
    templates: dict[str, PromptTemplate] = {}
    for path in sorted(directory.glob("*.md")):
        template = load_template(path)
        if template.name in templates:
            other = templates[template.name].path
            raise PromptTemplateError(
                f"{path}: prompt name {template.name!r} already used by {other}"
            )
        templates[template.name] = template
    return templates


def render(
    name: str, args: Mapping[str, object] | None = None, *, directory: Path | None = None
) -> str:
    """Render the template called ``name`` with ``args``.

    Raises:
        KeyError: no template has that name (the message lists the known ones).
        PromptArgumentError: a required argument is missing or an argument is unknown.
    """
    templates = load_templates(directory)
    if name not in templates:
        raise KeyError(f"unknown prompt {name!r}; known prompts: {', '.join(sorted(templates))}")
    return templates[name].render(args)


def register_prompts(server: MCPServer, directory: Path | None = None) -> list[str]:
    """Add every template as a prompt on ``server``; return the names in order.

    ``prompts/list`` then shows each prompt with its typed arguments, and ``prompts/get``
    renders it as one user message. A missing required or unknown argument is answered with
    a JSON-RPC ``INVALID_PARAMS`` error whose message names the arguments (the MCP spec's
    error for prompt arguments), not with a generic rendering failure.

    Raises:
        PromptTemplateError: a template is malformed (so a broken file stops the server at
            start, loudly, instead of failing one ``prompts/get`` later).
    """
    prompt_class = _template_prompt_class()
    from mcp.server.mcpserver.prompts.base import PromptArgument

    names: list[str] = []
    for template in load_templates(directory).values():
        prompt = prompt_class(
            name=template.name,
            title=template.title,
            description=template.description,
            arguments=[
                PromptArgument(name=a.name, description=a.description, required=a.required)
                for a in template.arguments
            ],
            fn=_renderer(template),
            template=template,
        )
        server.add_prompt(prompt)
        names.append(template.name)
    return names


def _renderer(template: PromptTemplate) -> Any:
    def render_prompt(**arguments: object) -> str:
        return template.render(arguments)

    return render_prompt


@functools.cache
def _template_prompt_class() -> type:
    # Imported here, not at module top: the CLI renders prompts without paying for `import mcp`.
    from mcp.server.mcpserver.prompts.base import Prompt
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS
    from pydantic import Field

    class TemplatePrompt(Prompt):
        """A Prompt that checks arguments itself, so the client gets a precise error.

        The SDK's own check raises a plain ValueError, which the server reports as an internal
        error; ours is raised first, as INVALID_PARAMS naming the arguments.
        """

        template: Any = Field(exclude=True)

        async def render(self, arguments: dict[str, Any] | None, context: Any) -> Any:
            try:
                self.template.resolve_arguments(arguments)
            except PromptArgumentError as exc:
                raise MCPError(code=INVALID_PARAMS, message=str(exc)) from exc
            return await super().render(arguments, context)

    return TemplatePrompt
