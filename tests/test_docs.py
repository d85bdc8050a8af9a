"""Every link and image in the READMEs and the manual resolves to a file in the repository (and
an anchor to a heading of that file), so that the pages work where they are read: on the
repository's web page, or from a clone."""

import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from helpers import ROOT

PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "smooth-topk" / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "smooth-topk" / "docs").glob("*.md"),
    ]
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub writes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def _links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


def _ignored(path: Path) -> bool:
    found = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
    return found.returncode == 0


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_image_resolves(page):
    broken = []
    for target in _links(page):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif _ignored(resolved):
            broken.append(f"{target}: ignored by git, so absent from the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading with this anchor")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_library_page_links_nothing_outside_its_package():
    """smooth-topk's README is its page on the package index, where only absolute links work."""
    relative = [
        t for t in _links(ROOT / "smooth-topk" / "README.md") if not t.startswith(("http", "#"))
    ]
    assert relative == []


def test_the_readme_is_a_map():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 220


def _layout_paths() -> tuple[list[Path], str]:
    """The paths the README's Layout block names, resolved, and the block's text.  A line at
    column 0 names a path from the root; a line at column 2 names paths under the last column-0
    folder before its description (after two spaces); a `.py` name in a description, or on the
    lines continuing it, lies in the first folder its line names."""
    text = (ROOT / "README.md").read_text().split("## Layout", 1)[1]
    block = text.split("```", 2)[1]
    paths, top, folder = [], ROOT, None
    for line in block.splitlines()[1:]:
        indent = len(line) - len(line.lstrip())
        if indent >= 3:  # a description continued
            names, description = [], line
        else:
            named, _, description = line.strip().partition("  ")
            names = named.split()
        base = ROOT if indent == 0 else top
        resolved = [base / name for name in names]
        if indent == 0 and resolved:
            top = resolved[0]
        if indent < 3:
            folder = next((path for path in resolved if _is_folder(path)), top)
        paths += resolved + [folder / name for name in re.findall(r"\b\w+\.py\b", description)]
    return paths, block


def _is_folder(path: Path) -> bool:
    return path.suffix == ""


def test_every_path_the_readme_layout_names_exists():
    paths, _ = _layout_paths()
    assert len(paths) > 40
    assert [str(p.relative_to(ROOT)) for p in paths if not p.exists()] == []


@pytest.mark.parametrize("package", ["config", "engine", "results", "."])
def test_the_readme_layout_names_every_module(package):
    """A module added to these folders must be placed on the map."""
    paths, _ = _layout_paths()
    folder = (ROOT / "src" / "topk_repro" / package).resolve()
    modules = {p for p in folder.glob("*.py") if p.name != "__init__.py"}
    assert sorted(p.name for p in modules - {p.resolve() for p in paths}) == []


LIBRARY_README = ROOT / "smooth-topk" / "README.md"
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", LIBRARY_README.read_text(), re.S)


@pytest.mark.parametrize(
    "block", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))]
)
def test_the_library_readmes_code_runs(block, monkeypatch):
    """Every example of smooth-topk's page runs as written, each block on its own."""
    monkeypatch.setenv("SMOOTH_TOPK_IMPL", "pytorch")  # the same values; no kernel to compile
    namespace: dict = {}
    exec(compile(block, str(LIBRARY_README), "exec"), namespace)
    assert "loss" in namespace and namespace["loss"].isfinite().all()


def test_the_library_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 2


def test_the_source_distribution_ships_what_the_library_readme_says(tmp_path):
    """The README names docs/implementation.md in the source distribution: it is there."""
    from setuptools import build_meta

    library = ROOT / "smooth-topk"
    previous = Path.cwd()
    os.chdir(library)
    try:
        name = build_meta.build_sdist(str(tmp_path))
    finally:
        os.chdir(previous)
    with tarfile.open(tmp_path / name) as archive:
        names = {
            Path(member).relative_to(Path(member).parts[0]).as_posix()
            for member in archive.getnames()
        }
    assert "docs/implementation.md" in names
    assert "docs/implementation.md" in LIBRARY_README.read_text()
