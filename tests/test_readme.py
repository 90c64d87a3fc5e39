"""The README's layout table names every package of zeb_core (and any loose module), every module of the role
packages in its package's row, and the top folders, so it cannot drift from the tree."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "zeb_core"
# zeb_core's packages by role: the layout table's row for each names every one of its modules.
ROLE_PACKAGES = ("game", "selfplay", "learn", "evaluation", "ops")


def _layout_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Layout")
    return text[start : text.index("\n## ", start + 1)]


def _row(layout: str, path: str) -> str:
    """The table rows whose first cell names `path`, joined ('' when none does)."""
    rows = [line for line in layout.splitlines() if line.startswith("|") and len(line.split("|")) > 2]
    return "\n".join(row for row in rows if f"`{path}`" in row.split("|")[1])


def missing_from_layout(layout: str) -> list[str]:
    """What the layout table fails to name: a loose zeb_core module, a package, a role package's module, a folder."""
    missing = [
        f"zeb_core/{p.stem}"
        for p in CORE.glob("*.py")
        if p.name != "__init__.py" and f"`zeb_core/{p.stem}" not in layout
    ]
    packages = sorted(p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    missing += [f"zeb_core/{name}/" for name in packages if f"`zeb_core/{name}/`" not in layout]
    for package in ROLE_PACKAGES:
        row = _row(layout, f"zeb_core/{package}/")
        modules = sorted(p.stem for p in (CORE / package).glob("*.py") if p.name != "__init__.py")
        missing += [f"zeb_core/{package}/{m}.py" for m in modules if f"`{m}`" not in row and f"`{m}.py`" not in row]
    missing += [
        f"{d}/"
        for d in ("tasks", "flows", "zeb_cli", "bench", "tests", "docs", "deployments")
        if f"`{d}/" not in layout
    ]
    return missing


def test_the_role_packages_hold_zeb_cores_modules() -> None:
    """zeb_core's top level holds packages only; each role package exists and holds modules (or the check is empty)."""
    assert [p.name for p in CORE.glob("*.py")] == ["__init__.py"]
    for package in ROLE_PACKAGES:
        assert len(list((CORE / package).glob("*.py"))) >= 3, package


def test_layout_table_names_every_package_module_and_top_folder() -> None:
    missing = missing_from_layout(_layout_section())
    assert not missing, f"README's Layout table does not name {missing}"


def test_a_name_left_out_of_the_table_is_found() -> None:
    """The check itself: a package, a role package's module, or a folder taken out of the table is reported."""
    layout = _layout_section()
    assert missing_from_layout(layout.replace("`zeb_core/mcts/`", "`mcts`")) == ["zeb_core/mcts/"]
    row = _row(layout, "zeb_core/learn/")
    assert "`promotion`" in row
    assert missing_from_layout(layout.replace(row, row.replace("`promotion`", "promotion"))) == [
        "zeb_core/learn/promotion.py"
    ]
    assert missing_from_layout(layout.replace("`bench/`", "bench")) == ["bench/"]
