"""The README is a guide whose links land, and the docs site builds strictly.

The README links into docs/ with plain relative links (`docs/strength.md#anchor`), which MkDocs does not check (the
README is outside its docs_dir): these tests check them, with the anchors computed by the same Markdown `toc`
extension MkDocs renders headings with. The site itself is built with `mkdocs build --strict`, and a broken anchor
planted in a copy must fail that build, so the strictness cannot be switched off unnoticed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import markdown
import yaml

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
MAX_README_LINES = 220
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@cache
def anchors(page: Path) -> frozenset[str]:
    """The ids MkDocs gives a page's headings: its Markdown with the extensions MkDocs always loads."""
    html = markdown.Markdown(extensions=["toc", "tables", "fenced_code"]).convert(page.read_text())
    return frozenset(re.findall(r'\sid="([^"]+)"', html))


def relative_links(text: str) -> list[str]:
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_anchors_are_computed_the_way_mkdocs_toc_does() -> None:
    page = DOCS / "serving.md"
    assert "zeb-serve" in anchors(page) and "exposing-zeb-serve" in anchors(page)  # backticks dropped
    assert "compute-buys-strength" in anchors(DOCS / "strength.md")  # punctuation stripped
    assert "the-trained-models-own-play-with-rollouts-beats-mcpimc-fg9" in anchors(DOCS / "fullgame.md")


def test_every_readme_link_lands_on_a_file_and_a_heading() -> None:
    links = relative_links(README.read_text())
    assert sum(t.startswith("docs/") for t in links) >= 10
    broken = []
    for target in links:
        path, _, anchor = target.partition("#")
        file = REPO / path
        if not file.is_file():
            broken.append(f"{target}: no file {path}")
        elif anchor and anchor not in anchors(file):
            broken.append(f"{target}: {path} has no heading with anchor #{anchor}")
    assert not broken, broken


def test_readme_is_a_guide_of_at_most_220_lines() -> None:
    lines = README.read_text().count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; measurements belong in docs/"
    headings = ["## Two commands", "## The `zeb` command", "## Headline figures", "## Layout", "## Where to go next"]
    for heading in headings:
        assert f"\n{heading}\n" in README.read_text(), heading


def test_every_headline_figure_links_to_the_page_that_holds_it() -> None:
    table = section(README.read_text(), "## Headline figures")
    rows = [r for r in table.splitlines() if r.startswith("|")][2:]  # after the header and its rule
    assert len(rows) >= 6
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4, row
        targets = [t for t in relative_links(cells[3]) if t.startswith("docs/")]
        assert targets, f"headline row without a link into docs/: {row}"
        page = (REPO / targets[0].partition("#")[0]).read_text()
        # Every number in the Zeb and the reference columns is one the linked page states.
        numbers = re.findall(r"\d[\d,]*(?:\.\d+)?", cells[1] + " " + cells[2])
        assert numbers, row
        missing = [n for n in numbers if n not in page]
        assert not missing, f"{targets[0]} does not state {missing} (row: {cells[0]})"


def test_the_nav_and_the_docs_home_list_every_page() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    assert config["strict"] is True and config["docs_dir"] == "docs"
    nav = {page for entry in config["nav"] for page in entry.values()}
    pages = {p.name for p in DOCS.glob("*.md")}
    assert nav == pages
    home = set(relative_links((DOCS / "index.md").read_text()))
    assert {p for p in pages if p != "index.md"} <= home


def mkdocs_build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    config = str(root / "mkdocs.yml")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", config, "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    result = mkdocs_build(REPO, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "strength" / "index.html").is_file()


def test_a_broken_anchor_or_a_link_out_of_docs_fails_the_build(tmp_path: Path) -> None:
    for i, bad in enumerate(["[x](strength.md#no-such-heading)", "[x](../deployments/README.md)"]):
        root = tmp_path / str(i)
        shutil.copytree(DOCS, root / "docs")
        shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
        with (root / "docs" / "fleet.md").open("a") as f:
            f.write(f"\n{bad}\n")
        result = mkdocs_build(root, root / "site")
        assert result.returncode != 0, f"{bad} built"
        assert "WARNING" in result.stderr
