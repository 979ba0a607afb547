"""The import-linter contract of `make lint`: plugins meet only through declared public modules."""

from __future__ import annotations

import grimp
import pytest

from core.testing import import_contract
from core.testing.import_contract import PluginBoundaryContract, _Plugin

MODULES = ["p", "p.a", "p.a.public", "p.a.models", "p.b", "p.b.services", "p.b.tests", "p.b.tests.test_x",
           "p.c", "p.c.api"]


@pytest.fixture
def plugins(monkeypatch):
    """Three plugins: b depends on a; c declares nothing."""
    found = {"p.a": _Plugin("a", "p.a", frozenset()), "p.b": _Plugin("b", "p.b", frozenset({"a"})),
             "p.c": _Plugin("c", "p.c", frozenset())}
    monkeypatch.setattr(import_contract, "_plugins", lambda: found)


def check(*imports: tuple[str, str]):
    graph = grimp.ImportGraph()
    for m in MODULES:
        graph.add_module(m)
    for n, (importer, imported) in enumerate(imports, start=1):
        graph.add_import(importer=importer, imported=imported, line_number=n, line_contents=f"import {imported}")
    return PluginBoundaryContract("boundary", {}, {}).check(graph, verbose=False)


def test_public_module_of_a_declared_dependency_is_allowed(plugins):
    assert check(("p.b.services", "p.a.public")).kept


def test_an_internal_module_is_refused_with_the_public_one_named(plugins):
    result = check(("p.b.services", "p.a.models"))
    assert not result.kept
    (v,) = result.metadata["violations"]
    assert (v.importer, v.imported, v.line_numbers) == ("p.b.services", "p.a.models", (1,))
    assert "p.a.public" in v.reason


def test_an_undeclared_plugin_is_refused_even_through_its_public_module(plugins):
    result = check(("p.c.api", "p.a.public"))
    assert not result.kept
    assert "does not declare 'a'" in result.metadata["violations"][0].reason


def test_tests_may_import_internals(plugins):
    assert check(("p.b.tests.test_x", "p.a.models")).kept


def test_the_real_tree_keeps_the_contract():
    """Every built-in plugin imports others only through declared public modules."""
    graph = grimp.build_graph("core", "plugins")
    result = PluginBoundaryContract("boundary", {}, {}).check(graph, verbose=False)
    assert result.kept, [(v.importer, v.imported, v.reason) for v in result.metadata["violations"]]
