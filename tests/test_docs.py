"""Every link and image in the READMEs and the manual resolves to a file in the repository (and
an anchor to a heading of that file), so that the pages work where they are read: on the
repository's web page, or from a clone."""

import re
import subprocess
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
