"""Print mlship's import graph and every import cycle in it.

Imports inside functions count: they are dependencies all the same, only paid for later. The graph
is built by grimp, the library import-linter checks the contracts in pyproject.toml with, so the
figures here are the ones the contracts see.

    python scripts/import_graph.py            # cycles between packages and between modules
    python scripts/import_graph.py --edges    # and every package -> package edge with its imports
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable

import grimp

ROOT = "mlship"


def package_of(module: str) -> str:
    """`mlship.serve.factory` -> `serve`; a top-level module is a package of its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def strongly_connected(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one node, or with a self-loop (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = itertools.count()
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = next(counter)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = next(counter)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def simple_cycles(component: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle inside one component, each started at its smallest node."""
    members = set(component)
    cycles: list[list[str]] = []
    for start in sorted(members):
        path = [start]

        def walk(node: str, start: str = start, path: list[str] = path) -> None:
            for child in sorted(edges.get(node, set()) & members):
                if child == start:
                    cycles.append([*path])
                elif child > start and child not in path:
                    path.append(child)
                    walk(child)
                    path.pop()

        walk(start)
    return cycles


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="list every package -> package edge")
    args = parser.parse_args()

    graph = grimp.build_graph(ROOT, cache_dir=None)
    modules = sorted(graph.modules)
    module_edges: dict[str, set[str]] = {
        m: set(graph.find_modules_directly_imported_by(m)) for m in modules
    }
    package_edges: dict[str, set[str]] = {}
    witnesses: dict[tuple[str, str], list[str]] = {}
    for importer, imported in ((a, b) for a, bs in module_edges.items() for b in bs):
        source, target = package_of(importer), package_of(imported)
        if source == target:
            continue
        package_edges.setdefault(source, set()).add(target)
        witnesses.setdefault((source, target), []).append(f"{importer} -> {imported}")
    packages = sorted({package_of(m) for m in modules})

    print(f"{len(modules)} modules, {sum(map(len, module_edges.values()))} module imports")
    print(f"{len(packages)} packages, {sum(map(len, package_edges.values()))} package edges")
    if args.edges:
        for (source, target), lines in sorted(witnesses.items()):
            print(f"  {source} -> {target}: {len(lines)}")

    components = strongly_connected(packages, package_edges)
    cycles = [c for component in components for c in simple_cycles(component, package_edges)]
    print(f"\npackage-level cycles: {len(cycles)} in {len(components)} tangled groups")
    for component in components:
        print(f"  group: {', '.join(component)}")
    for cycle in sorted(cycles, key=lambda c: (len(c), c)):
        print("  " + " -> ".join([*cycle, cycle[0]]))
        for source, target in itertools.pairwise([*cycle, cycle[0]]):
            for line in witnesses[(source, target)]:
                print(f"      {line}")

    module_components = strongly_connected(modules, module_edges)
    print(f"\nmodule-level cycles: {len(module_components)} tangled groups")
    for component in module_components:
        print(f"  {len(component)} modules: {', '.join(component)}")
    return 1 if cycles or module_components else 0


if __name__ == "__main__":
    sys.exit(main())
