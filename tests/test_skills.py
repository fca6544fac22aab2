"""The shipped skill packs follow the Agent Skills format and link only to files they ship."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from agent_bus import frontmatter
from agent_bus.installers import get_skill, list_skills
from agent_bus.resources import data_dir

SKILLS = data_dir("skills")
PACKS = sorted(p.parent for p in SKILLS.glob("*/SKILL.md"))
NAME_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*\Z")
# Markdown links and images: [text](target); targets with a scheme or anchors only are external.
LINK_RE = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MAX_BODY_LINES = 400


def test_the_four_documented_packs_are_shipped() -> None:
    assert {p.name for p in PACKS} >= {
        "agent-bus-protocol",
        "agent-bus-reviewer",
        "agent-bus-implementer",
        "agent-bus-handoff",
    }


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_skill_front_matter_reads_the_same_with_a_real_yaml_parser(pack: Path) -> None:
    text = (pack / "SKILL.md").read_text(encoding="utf-8")
    meta, _ = frontmatter.parse(text)
    assert meta == yaml.safe_load(text.split("---\n")[1])


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_skill_front_matter_has_a_name_matching_its_folder_and_a_when_to_use_description(
    pack: Path,
) -> None:
    meta, _ = frontmatter.parse((pack / "SKILL.md").read_text(encoding="utf-8"))
    assert set(meta) <= {"name", "description", "license", "compatibility", "metadata"}
    name, description = meta["name"], meta["description"]
    assert isinstance(name, str) and NAME_RE.match(name) and len(name) <= 64
    assert name == pack.name
    assert isinstance(description, str) and 1 <= len(description) <= 1024
    assert "Use when" in description or "Use whenever" in description


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_skill_body_stays_short_enough_to_load_whole(pack: Path) -> None:
    _, body = frontmatter.parse((pack / "SKILL.md").read_text(encoding="utf-8"))
    assert body.strip()
    assert len(body.splitlines()) <= MAX_BODY_LINES


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_every_relative_link_resolves_to_a_file_inside_the_pack(pack: Path) -> None:
    # Packs are installed one by one, so a link out of the pack would break for some users.
    for md in pack.rglob("*.md"):
        for target in LINK_RE.findall(md.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            resolved = (md.parent / target.split("#")[0]).resolve()
            assert resolved.is_file(), f"{md.relative_to(SKILLS)} links to missing {target}"
            assert resolved.is_relative_to(pack.resolve()), f"{md.name}: {target} leaves the pack"


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_every_reference_file_is_linked_from_skill_md(pack: Path) -> None:
    skill_md = (pack / "SKILL.md").read_text(encoding="utf-8")
    linked = {(pack / t).resolve() for t in LINK_RE.findall(skill_md)}
    for ref in (pack / "references").glob("*.md"):
        assert ref.resolve() in linked, f"{ref.name} is never linked from SKILL.md"


def test_list_skills_reports_every_pack_with_its_description() -> None:
    skills = {s.name: s for s in list_skills()}
    assert set(skills) == {p.name for p in PACKS}
    reviewer = get_skill("agent-bus-reviewer")
    assert reviewer.description == skills["agent-bus-reviewer"].description
    assert Path("SKILL.md") in reviewer.files()
    assert reviewer.text().startswith("---\nname: agent-bus-reviewer\n")


@pytest.mark.parametrize(
    "source",
    [
        "name: x\n",  # no opening fence
        "---\nname: x\n",  # not closed
        "---\ndescription: a: b\n---\n",  # a mapping value where a scalar goes
        "---\n- name\n---\n",  # a list, not a mapping
        "---\nname: [x\n---\n",  # unclosed flow sequence
    ],
)
def test_front_matter_parser_rejects_what_is_not_a_yaml_mapping(source: str) -> None:
    with pytest.raises(frontmatter.FrontMatterError, match=r"line \d+|front matter"):
        frontmatter.parse(source)


def test_front_matter_is_read_with_a_safe_yaml_loader() -> None:
    with pytest.raises(frontmatter.FrontMatterError, match="line 3: .*constructor"):
        frontmatter.parse("---\nname: x\nevil: !!python/object/apply:os.system [ls]\n---\n")
