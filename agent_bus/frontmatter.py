"""A tiny, strict front-matter parser for skill packs and prompt templates.

Why not PyYAML: the stdio server loads the prompt templates on every start, and cold start
matters (DESIGN.md §2); the front matter we write needs only a small subset of YAML. The
parser accepts exactly that subset and rejects anything else with a line number, so whatever
it accepts means the same to a real YAML parser (tests check that):

    key: plain or "double-quoted" or 'single-quoted' scalar   (true/false/null/integers typed)
    key: []
    key:
      - name: value          # a list of flat mappings
        other: value

Public API:
    parse(text: str) -> tuple[dict[str, object], str]   (front matter, body)
"""

from __future__ import annotations

import json
import re

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_INT_RE = re.compile(r"[-+]?(0|[1-9][0-9]*)\Z")
_PLAIN_FORBIDDEN_START = set("-?:,[]{}#&*!|>'\"%@`")
_FLOAT_RE = re.compile(
    r"[-+]?(\.[0-9]+|[0-9][0-9_]*\.[0-9_]*)([eE][-+]?[0-9]+)?\Z|[-+]?\.(inf|Inf|INF)\Z"
)
_YAML11_SPECIAL = {"yes", "no", "on", "off", "y", "n", "true", "false", "null", "~", ".nan"}


class FrontMatterError(ValueError):
    """The text has no front matter, or it uses YAML outside the supported subset."""


def parse(text: str) -> tuple[dict[str, object], str]:
    """Split ``text`` into its front matter (a dict) and the body after the closing ``---``.

    Raises:
        FrontMatterError: no ``---`` fences, or a line outside the supported subset
            (the message gives the 1-based line number in ``text``).
    """
    lines = text.splitlines()
    if not lines or lines[0].rstrip() != "---":
        raise FrontMatterError("line 1: expected '---' to open the front matter")
    for end in range(1, len(lines)):
        if lines[end].rstrip() == "---":
            break
    else:
        raise FrontMatterError("front matter is not closed by a '---' line")
    data = _Parser(lines[1:end], first_lineno=2).parse()
    body = "\n".join(lines[end + 1 :])
    if text.endswith("\n"):
        body += "\n"
    return data, body


class _Parser:
    def __init__(self, lines: list[str], first_lineno: int) -> None:
        self.lines = lines
        self.first = first_lineno
        self.i = 0

    def error(self, message: str, index: int | None = None) -> FrontMatterError:
        lineno = self.first + (self.i if index is None else index)
        return FrontMatterError(f"line {lineno}: {message}")

    def parse(self) -> dict[str, object]:
        result: dict[str, object] = {}
        while self.i < len(self.lines):
            raw = self.lines[self.i]
            if _blank_or_comment(raw):
                self.i += 1
                continue
            if raw[0] in " \t":
                raise self.error("unexpected indentation")
            key, rest = self.pair(raw)
            if key in result:
                raise self.error(f"duplicate key {key!r}")
            self.i += 1
            if rest == "":
                result[key] = self.parse_list(key)
            elif rest == "[]":
                result[key] = []
            else:
                result[key] = self.scalar(rest, self.i - 1)
        return result

    def pair(self, text: str) -> tuple[str, str]:
        key, sep, rest = text.partition(":")
        if not sep or not _KEY_RE.match(key):
            raise self.error(f"expected 'key: value', got {text.strip()!r}")
        if rest and not rest.startswith(" "):
            raise self.error("a space must follow ':'")
        return key, rest.strip()

    def parse_list(self, key: str) -> list[dict[str, object]]:
        items: list[dict[str, object]] = []
        while self.i < len(self.lines):
            raw = self.lines[self.i]
            if _blank_or_comment(raw):
                self.i += 1
                continue
            if raw[0] != " ":
                break
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise self.error("tabs are not allowed in indentation")
            stripped = raw.lstrip(" ")
            if not stripped.startswith("- "):
                raise self.error("expected a '- ' list item")
            item_indent = len(raw) - len(stripped) + 2
            item: dict[str, object] = {}
            self.add_item_pair(item, stripped[2:])
            self.i += 1
            while self.i < len(self.lines):
                raw = self.lines[self.i]
                if _blank_or_comment(raw):
                    self.i += 1
                    continue
                stripped = raw.lstrip(" ")
                indent = len(raw) - len(stripped)
                if indent != item_indent or stripped.startswith("- "):
                    break
                self.add_item_pair(item, stripped)
                self.i += 1
            items.append(item)
        if not items:
            raise self.error(f"{key!r} has no value", self.i - 1)
        return items

    def add_item_pair(self, item: dict[str, object], text: str) -> None:
        key, rest = self.pair(text)
        if key in item:
            raise self.error(f"duplicate key {key!r}")
        if rest in ("", "[]"):
            raise self.error("nested collections are not supported inside list items")
        item[key] = self.scalar(rest, self.i)

    def scalar(self, text: str, index: int) -> object:
        if text.startswith('"'):
            try:
                value, end = json.JSONDecoder().raw_decode(text)
            except json.JSONDecodeError as exc:
                raise self.error(f"bad double-quoted string: {exc.msg}", index) from None
            if not isinstance(value, str) or text[end:].strip():
                raise self.error("unexpected text after the closing quote", index)
            return value
        if text.startswith("'"):
            match = re.fullmatch(r"'((?:[^']|'')*)'", text)
            if not match:
                raise self.error("bad single-quoted string", index)
            return match.group(1).replace("''", "'")
        if text[0] in _PLAIN_FORBIDDEN_START or ": " in text or " #" in text or text[-1] == ":":
            raise self.error(f"quote this value: {text!r}", index)
        if text in ("true", "false"):
            return text == "true"
        if text in ("null", "~"):
            return None
        if text.lower() in _YAML11_SPECIAL or _FLOAT_RE.match(text):
            # YAML 1.1 parsers read these as booleans, nulls or floats: make the author quote.
            raise self.error(f"quote this value: {text!r}", index)
        if _INT_RE.match(text):
            return int(text)
        if text[0] in "+-0123456789" and text.lstrip("+-").isdigit():
            raise self.error(f"quote this value: {text!r}", index)  # YAML 1.1 reads 0-led as octal
        return text


def _blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")
