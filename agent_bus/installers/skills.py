"""Install the shipped skill packs where a client reads them, each pack visible once.

A pack is copied with a manifest of the hashes it was installed with, so a later run can tell
an untouched older copy (safe to update or remove) from a copy someone edited (left alone
unless forced). Several clients often read one folder (``.agents/skills``), and some read more
than one (Gemini CLI: ``.agents/skills`` and ``.gemini/skills``); a client that already sees a
copy gets that copy updated rather than a second one, and an untouched copy that every client
reading it would also find in the new place is removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent_bus import __version__, frontmatter
from agent_bus.errors import InstallFailed, InvalidArgument
from agent_bus.installers.clients import CLIENTS, ClientSpec, get_client
from agent_bus.installers.files import atomic_write, inside, place, read_bytes, sha256
from agent_bus.resources import data_dir

MANIFEST = ".agent-bus-manifest.json"


@dataclass(frozen=True)
class Skill:
    """A shipped skill pack: a folder with ``SKILL.md`` and its reference files."""

    name: str
    description: str
    path: Path

    def files(self) -> list[Path]:
        """Relative paths of every file in the pack, sorted (dotfiles and caches skipped)."""
        found = []
        for file in self.path.rglob("*"):
            rel = file.relative_to(self.path)
            if file.is_file() and not any(
                p.startswith(".") or p == "__pycache__" for p in rel.parts
            ):
                found.append(rel)
        return sorted(found)

    def text(self) -> str:
        """The ``SKILL.md`` text."""
        return (self.path / "SKILL.md").read_text(encoding="utf-8")


class UnknownSkillError(InvalidArgument):
    """No shipped skill pack has that name."""


def list_skills() -> list[Skill]:
    """Every shipped skill pack, sorted by name.

    Raises:
        frontmatter.FrontMatterError: a shipped ``SKILL.md`` is malformed (a packaging bug).
    """
    skills = []
    for skill_md in sorted(data_dir("skills").glob("*/SKILL.md")):
        meta, _ = frontmatter.parse(skill_md.read_text(encoding="utf-8"))
        skills.append(Skill(str(meta["name"]), str(meta["description"]), skill_md.parent))
    return skills


def get_skill(name: str) -> Skill:
    """The shipped skill pack called ``name``.

    Raises:
        UnknownSkillError: no such pack (the message lists the known ones).
    """
    skills = list_skills()
    for skill in skills:
        if skill.name == name:
            return skill
    known = ", ".join(s.name for s in skills)
    raise UnknownSkillError(f"unknown skill {name!r}; shipped skills: {known}", field="name")


def skills_dir(client: str, *, project_dir: Path | None = None, user: bool = False) -> Path:
    """The folder agent-bus installs ``client``'s packs into when it sees none yet.

    Raises:
        InvalidArgument: unknown client, or both scopes given.
    """
    return place(get_client(client).skill_dirs(user)[0], project_dir, user)


SkillStatus = Literal[
    "installed", "updated", "unchanged", "modified", "overwritten", "removed", "kept", "absent"
]


@dataclass
class SkillInstall:
    """What happened to one pack.

    ``installed``: new; ``updated``: an older copy we installed was replaced; ``unchanged``:
    already identical; ``modified``: the copy there was edited by someone, so it was left alone
    (``files`` lists the edited files; pass ``force`` to replace it); ``overwritten``: an
    edited copy was replaced because ``force`` was given. ``removed`` lists untouched copies in
    other folders that were dropped because every client reading them sees this one.
    Uninstalling: ``removed`` (the copy is gone), ``kept`` (other clients still use it; this
    one was taken off its record), ``absent`` (the client sees no copy of ours).
    """

    name: str
    path: Path
    status: SkillStatus
    files: list[str] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


@dataclass
class InstallReport:
    """The outcome of :func:`install_skills`, one entry per requested pack."""

    client: str
    target: Path
    skills: list[SkillInstall]
    warnings: list[str] = field(default_factory=list)

    @property
    def written(self) -> list[SkillInstall]:
        return [s for s in self.skills if s.status in ("installed", "updated", "overwritten")]

    @property
    def skipped(self) -> list[SkillInstall]:
        return [s for s in self.skills if s.status in ("unchanged", "modified")]

    @property
    def conflicts(self) -> list[SkillInstall]:
        return [s for s in self.skills if s.status == "modified"]


def install_skills(
    names: Iterable[str] | None,
    client: str,
    project_dir: Path | None = None,
    user: bool = False,
    force: bool = False,
) -> InstallReport:
    """Copy skill packs (all when ``names`` is empty or None) to where ``client`` reads them.

    A pack already visible to the client in one of its folders is updated there; otherwise it
    goes to the client's first folder. Identical files are not rewritten: a second run writes
    nothing. Files a user added to an installed pack are never touched.

    Raises:
        InvalidArgument: bad client, pack name or scope.
        InstallFailed: the target cannot be written.
    """
    spec = get_client(client)
    reads = [place(d, project_dir, user) for d in spec.skill_dirs(user)]
    wanted = list(names or [])
    skills = [get_skill(n) for n in wanted] if wanted else list_skills()
    # Every folder any client reads at this scope, to find copies made redundant.
    known = {place(d, project_dir, user) for c in CLIENTS.values() for d in c.skill_dirs(user)}
    try:
        return _install_all(spec, skills, reads, known, project_dir, user, force)
    except OSError as exc:
        raise InstallFailed(f"cannot install skills: {exc}") from None


def uninstall_skills(
    names: Iterable[str] | None,
    client: str,
    project_dir: Path | None = None,
    user: bool = False,
    force: bool = False,
) -> InstallReport:
    """Remove the packs (all when ``names`` is empty or None) that agent-bus installed for
    ``client``: a copy other clients still use only loses this client from its record.

    Only files the manifest lists are deleted, and only while unedited (``force`` deletes
    edited ones too); files a user added stay, and so does their folder.

    Raises:
        InvalidArgument: bad client, pack name or scope.
        InstallFailed: a file cannot be removed.
    """
    spec = get_client(client)
    reads = [place(d, project_dir, user) for d in spec.skill_dirs(user)]
    wanted = list(names or [])
    skills = [get_skill(n) for n in wanted] if wanted else list_skills()
    results = []
    try:
        for skill in skills:
            copies = [d / skill.name for d in reads if _read_manifest(d / skill.name)]
            if not copies:
                results.append(SkillInstall(skill.name, reads[0] / skill.name, "absent"))
            for copy in copies:
                results.append(_uninstall_one(skill.name, copy, spec.name, force))
    except OSError as exc:
        raise InstallFailed(f"cannot remove skills: {exc}") from None
    return InstallReport(spec.name, reads[0], results)


def _uninstall_one(name: str, copy: Path, client: str, force: bool) -> SkillInstall:
    manifest = _read_manifest(copy)
    others = (_read_clients(copy) or {client}) - {client}
    if others:
        _write_manifest(copy, manifest, others)
        return SkillInstall(name, copy, "kept", sorted(others))
    edited = [
        rel for rel, digest in manifest.items() if sha256(read_bytes(copy / rel) or b"") != digest
    ]
    if edited and not force:
        return SkillInstall(name, copy, "modified", edited)
    _remove_copy(copy, manifest)
    return SkillInstall(name, copy, "removed", sorted(manifest))


def _remove_copy(copy: Path, manifest: dict[str, str]) -> None:
    """Delete the manifest's files, the manifest, and the folders they leave empty."""
    for rel in manifest:
        (copy / rel).unlink(missing_ok=True)
    (copy / MANIFEST).unlink(missing_ok=True)
    for sub in sorted((p for p in copy.rglob("*") if p.is_dir()), reverse=True):
        if not any(sub.iterdir()):
            sub.rmdir()
    if copy.is_dir() and not any(copy.iterdir()):
        copy.rmdir()


def _install_all(
    spec: ClientSpec,
    skills: list[Skill],
    reads: list[Path],
    known: set[Path],
    project_dir: Path | None,
    user: bool,
    force: bool,
) -> InstallReport:
    def dirs_of(name: str) -> list[Path]:
        return [place(d, project_dir, user) for d in CLIENTS[name].skill_dirs(user)]

    results, warnings = [], []
    for skill in skills:
        home = next((d for d in reads if (d / skill.name / "SKILL.md").exists()), reads[0])
        result = _install_one(skill, home / skill.name, force, spec.name)
        if result.status != "modified":
            moved, result.removed = _drop_redundant(skill.name, home, known, dirs_of)
            if moved:
                _record_clients(home / skill.name, moved)
        # Who asked for a copy anywhere, and does any of them now see two?
        asked = {spec.name}
        for folder in known:
            asked |= _read_clients(folder / skill.name) or set()
        for name in sorted(asked):
            seen = [d for d in dirs_of(name) if (d / skill.name / "SKILL.md").exists()]
            if len(seen) > 1:
                where = " and ".join(str(d) for d in seen)
                warnings.append(
                    f"{CLIENTS[name].label} sees {skill.name} twice ({where}): "
                    "remove the copy it should not use"
                )
        results.append(result)
    return InstallReport(spec.name, reads[0], results, warnings)


def _drop_redundant(
    name: str, home: Path, known: set[Path], dirs_of: Callable[[str], list[Path]]
) -> tuple[set[str], list[Path]]:
    """Remove untouched copies of ``name`` that every client they serve also finds in ``home``.

    A copy serves the clients its manifest records; a copy from an older release (no record)
    serves every client that reads its folder. Returns the clients moved and the copies removed.
    """
    moved: set[str] = set()
    removed = []
    for folder in sorted(known - {home}):
        copy = folder / name
        manifest = _read_manifest(copy)
        if not manifest:
            continue
        served = _read_clients(copy)
        if served is None:
            served = {c for c in CLIENTS if folder in dirs_of(c)}
        if not all(home in dirs_of(c) for c in served if c in CLIENTS):
            continue
        if any(sha256(read_bytes(copy / rel) or b"") != digest for rel, digest in manifest.items()):
            continue  # someone edited it: theirs to remove
        _remove_copy(copy, manifest)
        moved |= served
        removed.append(copy)
    return moved, removed


def _install_one(skill: Skill, dest: Path, force: bool, client: str) -> SkillInstall:
    shipped = {rel.as_posix(): (skill.path / rel).read_bytes() for rel in skill.files()}
    previous = _read_manifest(dest)
    clients = (_read_clients(dest) or set()) | {client}
    changed, edited = [], []
    for rel, content in shipped.items():
        current = read_bytes(dest / rel)
        if current == content:
            continue
        changed.append(rel)
        if current is not None and previous.get(rel) != sha256(current):
            edited.append(rel)
    # Files we installed before, no longer shipped, and untouched since: remove them.
    stale = [
        rel
        for rel, digest in previous.items()
        if rel not in shipped and sha256(read_bytes(dest / rel) or b"") == digest
    ]
    existed = dest.exists()
    if edited and not force:
        return SkillInstall(skill.name, dest, "modified", edited)
    for rel in changed:
        atomic_write(dest / rel, shipped[rel])
    for rel in stale:
        (dest / rel).unlink(missing_ok=True)
    manifest = {rel: sha256(content) for rel, content in shipped.items()}
    if manifest != previous or changed or clients != _read_clients(dest):
        _write_manifest(dest, manifest, clients)
    if not changed and not stale:
        status: SkillStatus = "unchanged"
    elif edited:
        status = "overwritten"
    elif not existed or len(changed) == len(shipped) and not previous:
        status = "installed"
    else:
        status = "updated"
    return SkillInstall(skill.name, dest, status, changed + stale)


def _read_manifest(dest: Path) -> dict[str, str]:
    try:
        data = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    # The manifest lives in the user's (possibly cloned) project: only keys naming a plain
    # file inside the pack count, so it can never point us at anything else to delete.
    return {str(k): str(v) for k, v in files.items() if inside(dest, str(k))}


def _read_clients(dest: Path) -> set[str] | None:
    """The clients a copy was installed for (None: no manifest, or one from before records)."""
    try:
        data = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    clients = data.get("clients") if isinstance(data, dict) else None
    if not isinstance(clients, list):
        return None
    return {str(c) for c in clients}


def _write_manifest(dest: Path, files: dict[str, str], clients: set[str]) -> None:
    payload = {"package_version": __version__, "clients": sorted(clients), "files": files}
    atomic_write(dest / MANIFEST, (json.dumps(payload, indent=2) + "\n").encode())


def _record_clients(dest: Path, more: set[str]) -> None:
    clients = (_read_clients(dest) or set()) | more
    _write_manifest(dest, _read_manifest(dest), clients)
