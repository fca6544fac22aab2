"""File helpers every installer shares: atomic writes, hashes, scope-relative paths.

Installers edit files users own (client settings, skill folders), so a write either lands
whole or not at all, keeps the file's permissions, and never follows a path outside the
place it was meant for.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from agent_bus.errors import InvalidArgument


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` via a temp file + rename, so a crash never leaves a half-written file.

    Parent folders are created; an existing file keeps its permission bits.

    Raises:
        OSError: the folder or the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (what manifests record)."""
    return hashlib.sha256(data).hexdigest()


def place(relative: str, project_dir: Path | None, user: bool) -> Path:
    """Resolve a client path: ``~/…`` under the home folder, anything else in the project.

    Raises:
        InvalidArgument: both scopes given, or a per-project path asked for at user scope.
    """
    if user and project_dir is not None:
        raise InvalidArgument(
            "choose either a project directory or the user scope, not both", field="user"
        )
    if user:
        if not relative.startswith("~/"):
            raise InvalidArgument(f"{relative!r} is not a per-user path", field="user")
        return Path.home() / relative[2:]
    return Path(project_dir if project_dir is not None else Path.cwd()) / relative


def inside(dest: Path, rel: str) -> bool:
    """True when ``rel`` names a plain path below ``dest`` that no symlink redirects."""
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or any(p in ("..", "") for p in path.parts):
        return False
    current = dest
    for part in path.parts:
        current = current / part
        if current.is_symlink():
            return False
    return current.resolve().is_relative_to(dest.resolve())
