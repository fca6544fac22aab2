"""Front matter of skill packs and prompt templates: ``---`` fences around YAML.

The YAML is read with PyYAML's ``safe_load`` (the C loader when built in), imported only when a
file is parsed so commands that never read a template do not pay for it.

Public API:
    parse(text: str) -> tuple[dict[str, object], str]   (front matter, body)
"""

from __future__ import annotations


class FrontMatterError(ValueError):
    """The text has no front matter, or its YAML is invalid or not a mapping."""


def parse(text: str) -> tuple[dict[str, object], str]:
    """Split ``text`` into its front matter (a dict) and the body after the closing ``---``.

    Raises:
        FrontMatterError: no ``---`` fences, YAML that does not parse (the message gives the
            1-based line number in ``text``), or front matter that is not a mapping.
    """
    lines = text.splitlines()
    if not lines or lines[0].rstrip() != "---":
        raise FrontMatterError("line 1: expected '---' to open the front matter")
    for end in range(1, len(lines)):
        if lines[end].rstrip() == "---":
            break
    else:
        raise FrontMatterError("front matter is not closed by a '---' line")
    data = _load_yaml("\n".join(lines[1:end]))
    body = "\n".join(lines[end + 1 :])
    if text.endswith("\n"):
        body += "\n"
    return data, body


def _load_yaml(source: str) -> dict[str, object]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(source, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 2}: " if mark is not None else ""
        raise FrontMatterError(f"{where}{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise FrontMatterError(f"front matter is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontMatterError("line 2: front matter must be a mapping of 'key: value' lines")
    return {str(k): v for k, v in data.items()}
