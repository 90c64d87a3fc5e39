"""The README's layout table names every module and folder of the tree, so it cannot drift from it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _layout_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Layout")
    return text[start : text.index("\n## ", start + 1)]


def test_layout_table_names_every_package_module_and_top_folder() -> None:
    layout = _layout_section()
    core = REPO / "zeb_core"
    names = [f"zeb_core/{p.stem}" for p in core.glob("*.py") if p.name != "__init__.py"]
    names += [f"zeb_core/{p.name}/" for p in core.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    names += [f"{d}/" for d in ("tasks", "flows", "zeb_cli", "bench", "tests", "docs", "deployments")]
    assert len(names) > 25
    missing = [n for n in names if f"`{n}" not in layout]
    assert not missing, f"README's Layout table does not name {missing}"
