"""The import layers hold: the contracts in pyproject.toml are kept, and the cycles that were
untangled stay untangled (imports inside functions and under TYPE_CHECKING count as well).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("mlship", cache_dir=None)


def test_the_contracts_are_kept() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("mlship.serve", "mlship.cli"),
        ("mlship.server", "mlship.cli"),
        ("mlship.config", "mlship.train"),
        ("mlship.store", "mlship.security"),
        ("mlship.crypto", "mlship.store"),
        ("mlship.crypto", "mlship.security"),
        ("mlship.security.store_signing", "mlship.security.rotation"),
        ("mlship.package", "mlship.serve"),
        ("mlship.monitor", "mlship.serve"),
        ("mlship.remote", "mlship.registry"),
        ("mlship.remote", "mlship.monitor"),
        ("mlship.remote", "mlship.security"),
        ("mlship.package", "mlship.workspace"),
        ("mlship.monitor", "mlship.workspace"),
        ("mlship.registry", "mlship.workspace"),
        ("mlship.train", "mlship.workspace"),
        ("mlship.data", "mlship.workspace"),
    ],
)
def test_no_way_back_down(graph: grimp.ImportGraph, importer: str, imported: str) -> None:
    """No chain of imports, however long, leads from a lower layer up to a higher one."""
    chain = graph.find_shortest_chain(importer=importer, imported=imported, as_packages=True)
    assert chain is None, " -> ".join(chain or ())


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("mlship.data", "mlship.train"),
        ("mlship.train", "mlship.registry"),
        ("mlship.train", "mlship.monitor"),
        ("mlship.registry", "mlship.monitor"),
    ],
)
def test_no_direct_import_down_the_domain(
    graph: grimp.ImportGraph, importer: str, imported: str
) -> None:
    """Within the domain, still tangled through spec, at least these pairs no longer import
    each other directly."""
    assert not graph.direct_import_exists(importer=importer, imported=imported, as_packages=True)


def test_no_module_imports_itself_through_others(graph: grimp.ImportGraph) -> None:
    """Not one module cycle: each module's imports never lead back to it."""
    looped = [
        module
        for module in sorted(graph.modules)
        if any(
            graph.chain_exists(importer=child, imported=module)
            for child in graph.find_modules_directly_imported_by(module)
        )
    ]
    assert looped == []
