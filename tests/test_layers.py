"""The house keeps its order (issue 24): read from the code's own imports (a small AST check
of ours), so an import that undoes a remodel step fails here, naming the file.

- no import circle between modules of `gateway/`;
- `suppression/` imports nothing from `gateway`, and exports its public surface;
- the ground floor (`errors`, `background`, `config/`, `observability/` but its alerts)
  imports nothing of the gateway above it;
- the CLI and the wiring (`app/`: parts, service, workers) are imported by nothing below them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).parents[1]
GROUND = ("gateway.errors", "gateway.background", "gateway.config",
          "gateway.observability.logs", "gateway.observability.log_context",
          "gateway.observability.metrics")
TOP = ("gateway.cli", "gateway.app", "gateway.__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each module of gateway/ and suppression/ -> the modules of either it imports."""
    known = {module_name(p): p for package in ("gateway", "suppression")
             for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from package import module` imports the module, not the package's face
                candidates = [f"{node.module}.{a.name}"
                              if f"{node.module}.{a.name}" in known else node.module
                              for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            for candidate in candidates:
                if candidate in known and candidate != name:
                    graph[name].add(candidate)
    return graph


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_import_circle():
    graph = imports()
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == []


def test_the_suppression_library_stands_alone_and_says_what_it_offers():
    import suppression

    graph = imports()
    leaks = {m: sorted(d) for m, d in graph.items()
             if m.startswith("suppression") and any(x.startswith("gateway") for x in d)}
    assert leaks == {}
    assert suppression.__all__ and all(getattr(suppression, n) is not None
                                       for n in suppression.__all__)


def test_the_ground_floor_imports_nothing_above_it():
    graph = imports()
    up = {m: sorted(d for d in deps if d.startswith("gateway") and not within(d, GROUND))
          for m, deps in graph.items() if within(m, GROUND)}
    assert {m: d for m, d in up.items() if d} == {}


def test_nothing_below_imports_the_cli_or_the_wiring():
    graph = imports()
    down = {m: sorted(d for d in deps if within(d, TOP))
            for m, deps in graph.items() if not within(m, TOP)}
    assert {m: d for m, d in down.items() if d} == {}


# The rooms from the top floor down (`farm-studio look` draws the same order). An import
# goes to a room on a lower line; the exceptions are the ones docs/architecture.md lists.
LEVELS = [
    ["gateway.__main__"],
    ["gateway.cli"],
    ["gateway.app"],
    ["gateway.web"],
    ["gateway.lifecycle", "gateway.smtp", "gateway.reports"],
    ["gateway.submission"],
    ["gateway.review"],
    ["gateway.delivery"],
    ["gateway.outbound", "gateway.delivery.upstream"],
    ["gateway.pixels", "gateway.events", "gateway.dkim", "gateway.policy"],
    ["gateway.feedback"],
    ["gateway.optout"],
    ["gateway.vault", "gateway.limits", "gateway.access", "gateway.lawful"],
    ["gateway.net", "gateway.directory", "gateway.observability"],
    ["gateway.audit"],
    ["gateway.store", "gateway.config"],
    ["gateway.background", "gateway.errors", "gateway.protocol", "suppression"],
]
UPWARD_ALLOWED = {
    # a tenant setting is validated by the room that renders it (the footer's templates)
    ("gateway.directory.settings", "gateway.outbound.footer"),
    # `gateway domain check` compares the DNS with the keys the gateway signs with
    ("gateway.directory.domain_check", "gateway.dkim.keys"),
}


def room(module: str) -> tuple[int, str]:
    """(level, room) of a module."""
    for index, rooms in enumerate(LEVELS):
        for name in rooms:
            if within(module, (name,)):
                return index, name
    raise AssertionError(f"{module} is in no room of LEVELS: add it where it belongs")


def level(module: str) -> int:
    return room(module)[0]


def test_imports_run_down_the_floors():
    graph = imports()
    upward = sorted((m, d) for m, deps in graph.items() for d in deps
                    if level(d) < level(m) and (m, d) not in UPWARD_ALLOWED)
    sideways = sorted((m, d) for m, deps in graph.items() for d in deps
                      if level(d) == level(m) and room(d) != room(m))
    assert upward == [] and sideways == []


def test_a_test_module_imports_no_other_test_module():
    """What tests share lives in tests/support/ (and fixtures in conftest.py), so that moving
    or deleting one test module never breaks another."""
    tests = ROOT / "tests"
    borrowed = []
    for path in tests.rglob("*.py"):
        if "support" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module \
                    and node.module.startswith("tests.") \
                    and not node.module.startswith(("tests.support", "tests.conftest")):
                borrowed.append(f"{path.relative_to(ROOT)}: {node.module}")
    assert borrowed == []


def test_the_test_tree_mirrors_the_rooms():
    """Every test folder is named after a room of gateway/ (or the library beside it)."""
    rooms = {p.name for p in (ROOT / "gateway").iterdir() if p.is_dir() and p.name[0] != "_"}
    folders = {p.name for p in (ROOT / "tests").iterdir()
               if p.is_dir() and p.name[0] != "_" and (p / "__init__.py").exists()}
    assert folders - rooms - {"support", "suppression", "e2e", "fixtures"} == set()
