"""The README is a front door and the docs site holds the rest: the README stays short
and every link in it, and in every docs page, names a file of this repository (no page
links anything outside it). ``mkdocs build --strict`` (``.ci/run``) checks the links
between the docs pages and their anchors; this checks what it cannot see."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from orderflow.paths import ROOT

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
README_MAX_BYTES = 12_500  # "at most about 12 KB"


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # code blocks are not links
    return LINK.findall(text)


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= README_MAX_BYTES, len(readme.encode())
    for must in ("./dev run", "./dev test", "```mermaid", "/console/", "orderflow journey", "orderflow demo"):
        assert must in readme, must


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_every_link_names_a_file_of_this_repository(page: Path) -> None:
    for target in links(page):
        assert "://" not in target and not target.startswith("/"), f"{page.name} links outside: {target}"
        file = (page.parent / target.split("#")[0]).resolve()
        assert file.is_relative_to(ROOT) and file.exists(), f"{page.name} links a missing file: {target}"


def test_the_site_lists_every_docs_page() -> None:
    # mkdocs.yml's tag for the Mermaid fence is a Python name: read it as plain text.
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    listed: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, str):
            listed.add(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)

    walk(config["nav"])
    assert config["docs_dir"] == "docs"
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}
