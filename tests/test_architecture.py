"""The package's import structure, read from the sources with `ast` (nothing is imported).

* Every import of one rnnkit module by another sits at module level: an import inside a function hides a
  dependency (and usually an import cycle) until that function runs.
* The graph of those imports has no cycle.
Optional third-party imports (safetensors, matplotlib, tqdm) may stay inside functions.
The helpers are checked on small made-up sources too, so that the tests cannot pass by finding nothing.
"""

import ast
from pathlib import Path

PACKAGE = "rnnkit"
SOURCES = Path(__file__).resolve().parent.parent / "python" / PACKAGE


def intra_imports(source: str, modules: set) -> list:
    """(target module, line, inside a function?) for every import of a package module in `source`.

    `from . import x` names module x when x is one of `modules`, else the package itself ("__init__");
    `from .x import y` and `import rnnkit.x` name x.
    """
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                parts = (child.module or "").split(".") if child.module else []
                if child.level == 0:
                    if not parts or parts[0] != PACKAGE:
                        continue
                    parts = parts[1:]
                elif child.level > 1:
                    raise AssertionError(f"line {child.lineno}: relative import beyond the package")
                if parts:
                    found.append((parts[0], child.lineno, in_function))
                else:
                    for alias in child.names:
                        target = alias.name if alias.name in modules else "__init__"
                        found.append((target, child.lineno, in_function))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    parts = alias.name.split(".")
                    if parts[0] == PACKAGE:
                        found.append((parts[1] if len(parts) > 1 else "__init__", child.lineno, in_function))
            visit(child, nested)

    visit(ast.parse(source), False)
    return found


def find_cycle(graph: dict):
    """One cycle of `graph` (module -> set of modules) as a list [a, b, ..., a], or None."""
    state, stack = {}, []

    def dfs(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = dfs(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = dfs(node)
            if cycle:
                return cycle
    return None


def package_imports():
    files = sorted(SOURCES.glob("*.py"))
    modules = {f.stem for f in files}
    return modules, {f.stem: intra_imports(f.read_text(encoding="utf-8"), modules) for f in files}


def test_sources_are_found():
    modules, imports = package_imports()
    assert {"__init__", "module", "model", "io", "layers", "nn", "cells"} <= modules
    # the collector sees the imports that are known to be there
    assert ("module", False) in {(t, f) for t, _, f in imports["model"]}
    assert {"layers", "model", "io"} <= {t for t, _, _ in imports["__init__"]}


def test_no_function_level_intra_package_imports():
    _, imports = package_imports()
    inside = [f"{name}.py:{line} imports {target}" for name, found in imports.items()
              for target, line, in_function in found if in_function]
    assert not inside, "intra-package imports inside functions (move them to the top of the module):\n" + \
        "\n".join(inside)


def test_import_graph_is_acyclic():
    _, imports = package_imports()
    graph = {name: {t for t, _, _ in found if t != name} for name, found in imports.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_catch_what_they_look_for():
    modules = {"__init__", "a", "b", "c"}
    source = ("import os\nfrom . import a\nfrom .b import x\nimport rnnkit.c\nfrom rnnkit import helper\n"
              "def f():\n    from .c import y\n    import json\n    return y\n"
              "class K:\n    def m(self):\n        from . import a\n")
    assert intra_imports(source, modules) == [("a", 2, False), ("b", 3, False), ("c", 4, False),
                                              ("__init__", 5, False), ("c", 7, True), ("a", 12, True)]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"a"}, "a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
