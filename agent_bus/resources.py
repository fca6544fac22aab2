"""Where the shipped skill packs and prompt templates live at run time.

A wheel carries them as package data under ``agent_bus/_data/{skills,prompts}`` (hatch
``force-include`` in pyproject.toml); a source checkout or an editable install has them at the
repository root (``skills/``, ``prompts/``). Callers ask for a kind and never care which.

Public API:
    data_dir(kind: str) -> pathlib.Path
"""

from __future__ import annotations

import pathlib
from importlib import resources

KINDS = ("skills", "prompts")

_REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def data_dir(kind: str) -> pathlib.Path:
    """Return the folder holding the shipped ``kind`` (``"skills"`` or ``"prompts"``).

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.
        FileNotFoundError: neither the packaged nor the source-tree folder exists (a broken
            install); the message names both places looked at.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {', '.join(KINDS)}")
    packaged = resources.files("agent_bus").joinpath("_data", kind)
    # Wheels install as plain directories, so the Traversable is a real path; zipped
    # installs are not supported (installers copy files and need real paths).
    if packaged.is_dir():
        return pathlib.Path(str(packaged))
    source = _REPO_ROOT / kind
    if source.is_dir():
        return source
    raise FileNotFoundError(
        f"agent-bus {kind} folder not found (looked in {packaged} and {source}); "
        "reinstall the agent-bus package"
    )
