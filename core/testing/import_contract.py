"""An import-linter contract: plugins meet only through public modules of declared dependencies.

Configured in ``pyproject.toml`` (``[tool.importlinter]``) and run by ``make lint``
(``lint-imports``). For every discovered plugin (built in or installed through the
``dovetail.plugins`` entry point) it reads the manifest's ``depends`` and ``optional`` and
checks every direct import made by the plugin's non-test modules:

* another plugin may be imported only through its ``<package>.public`` module, and
* only when that plugin is named in the importer's ``depends`` or ``optional``.

The dependency list comes from the manifests themselves, so the contract cannot drift
from what the core resolves at start-up. Tests (``<package>.tests``) may import internals.
An integrator can add the same contract to a plugin's own ``pyproject.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output

from core.plugins import discover


@dataclass(frozen=True)
class _Plugin:
    name: str
    package: str
    allowed: frozenset[str]


@dataclass(frozen=True)
class _Violation:
    importer: str
    imported: str
    line_numbers: tuple[int, ...]
    reason: str


def _plugins() -> dict[str, _Plugin]:
    """Package name → plugin for every plugin whose manifest loads."""
    out: dict[str, _Plugin] = {}
    for name, av in discover().items():
        if av.module is None or av.manifest is None:
            continue
        package = av.module.__name__.rpartition(".")[0] or av.module.__name__
        allowed = frozenset(av.manifest.depends) | frozenset(av.manifest.optional)
        out[package] = _Plugin(name, package, allowed)
    return out


def _owner(module: str, packages: dict[str, _Plugin]) -> _Plugin | None:
    for package, plugin in packages.items():
        if module == package or module.startswith(package + "."):
            return plugin
    return None


class PluginBoundaryContract(Contract):
    """A plugin imports another plugin only through its ``public`` module and only when declared.

    Configuration options:
        - public_module: the module name each plugin exposes (default ``public``).
    """

    type_name = "plugin_boundary"

    public_module = fields.StringField(required=False, default="public")

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        """Walk every plugin module's direct imports; collect those that cross a boundary wrongly."""
        packages = _plugins()
        public = str(self.public_module)
        violations: list[_Violation] = []
        for package, plugin in sorted(packages.items()):
            if package not in graph.modules:
                continue
            for importer in sorted(graph.find_descendants(package) | {package}):
                if importer.startswith(f"{package}.tests"):
                    continue
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    other = _owner(imported, packages)
                    if other is None or other is plugin:
                        continue
                    reason = ""
                    if other.name not in plugin.allowed:
                        reason = (f"{plugin.name} does not declare {other.name!r} in depends or optional "
                                  f"(plugin.py)")
                    elif imported != f"{other.package}.{public}":
                        reason = f"import {other.package}.{public} instead (the only module {other.name} exports)"
                    if reason:
                        details = graph.get_import_details(importer=importer, imported=imported)
                        lines = tuple(sorted({d["line_number"] for d in details}))
                        violations.append(_Violation(importer, imported, lines, reason))
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        """One line per illegal import: importer, imported, line numbers and what to do."""
        violations: list[Any] = check.metadata["violations"]
        for v in violations:
            output.print_error(f"- {v.importer} -> {v.imported} (l.{', '.join(map(str, v.line_numbers))}): "
                               f"{v.reason}", bold=False)
        output.new_line()
