"""The import graph of ``src/htrlab`` points downwards only: a module imports its own package and the layers
below it (imports inside functions and under TYPE_CHECKING count too), so that models never import training
or evaluation, training does not import evaluation, and the reading API sits on the layers it uses."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "htrlab"

# lowest first; a package may import its own modules and any package of an earlier row
LAYERS = [
    {"errors"},
    {"config", "bundled"},
    {"text"},
    {"degrade"},
    {"data"},
    {"synth"},
    {"models"},
    {"lm"},
    {"decoding"},
    {"segment"},
    {"read"},
    {"train"},
    {"evaluate"},
    {"serve"},
    {"cli", "__init__", "__main__"},
]
RANK = {name: k for k, row in enumerate(LAYERS) for name in row}


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level htrlab package) of every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg_parts = path.relative_to(SRC).parts[:-1]
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = list(pkg_parts[: len(pkg_parts) - node.level + 1])
                names = [".".join(["htrlab", *base, *(node.module.split(".") if node.module else [])])]
            else:
                mod = node.module or ""
                names = [f"{mod}.{a.name}" if mod == "htrlab" else mod for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "htrlab" and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


def test_no_module_imports_a_higher_layer() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        own = _package(path)
        assert own in RANK, f"{path.relative_to(SRC)}: package {own!r} has no layer in this test"
        for line, target in _imports(path):
            if target == own or target == "__version__":
                continue
            assert target in RANK, f"{path.relative_to(SRC)}:{line} imports unknown htrlab.{target}"
            if RANK[target] >= RANK[own]:
                wrong.append(f"{path.relative_to(SRC)}:{line} imports htrlab.{target}")
    assert not wrong, "imports up or across the layers:\n" + "\n".join(wrong)
