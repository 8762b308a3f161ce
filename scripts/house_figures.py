"""The sizes issue 24 tracks: the largest modules and longest functions of gateway/
(migrations left out), and how many pass ~500 and ~60 lines.

    .venv/bin/python scripts/house_figures.py
(the import arrows and circles: `farm-studio look`, and tests/test_layers.py)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "gateway"


def main() -> None:
    modules, functions = [], []
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        text = path.read_text()
        name = str(path.relative_to(ROOT.parent))
        modules.append((len(text.splitlines()), name))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                functions.append((node.end_lineno - node.lineno + 1, f"{name}:{node.name}"))
    modules.sort(reverse=True)
    functions.sort(reverse=True)
    print("largest modules:  ", ", ".join(f"{n} {m}" for n, m in modules[:3]))
    print("longest functions:", ", ".join(f"{n} {f}" for n, f in functions[:3]))
    print(f"modules over 500 lines: {sum(n > 500 for n, _ in modules)}; "
          f"functions over 60 lines: {sum(n > 60 for n, _ in functions)}")


if __name__ == "__main__":
    main()
