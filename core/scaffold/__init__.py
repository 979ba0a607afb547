"""``dovetail plugins new NAME``: write a working plugin package from ``template/``.

Every ``*.tmpl`` file under ``template/`` is copied with ``${name}`` (plugin name),
``${pkg}`` (import package ``dovetail_<name>``), ``${dist}`` (distribution
``dovetail-<name>``) and ``${Title}`` substituted; ``__pkg__`` and ``__name__`` in
paths become the package and plugin names; ``.po`` catalogues are compiled to ``.mo``.
The result passes its own tests.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from core.errors import DovetailError

TEMPLATE_DIR = Path(__file__).parent / "template"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
RESERVED = {"core", "plugins", "test", "tests", "dovetail", "api", "web", "static", "admin"}


def check_name(name: str) -> None:
    if not NAME_RE.match(name) or name.endswith("_") or "__" in name:
        raise DovetailError(f"invalid plugin name '{name}': use 2-40 lower-case letters, digits and "
                            "single '_', starting with a letter (it prefixes tables and permissions)")
    if keyword.iskeyword(name) or name in RESERVED:
        raise DovetailError(f"invalid plugin name '{name}': the name is reserved")


def names(name: str) -> dict[str, str]:
    return {"name": name, "pkg": f"dovetail_{name}", "dist": "dovetail-" + name.replace("_", "-"),
            "Title": name.replace("_", " ").title()}


def render(name: str) -> dict[str, str]:
    """Relative path → file content of the package for plugin ``name``."""
    values = names(name)
    out: dict[str, str] = {}
    for src in sorted(TEMPLATE_DIR.rglob("*.tmpl")):
        rel = src.relative_to(TEMPLATE_DIR).as_posix().removesuffix(".tmpl")
        rel = rel.replace("__pkg__", values["pkg"]).replace("__name__", name)
        out[rel] = Template(src.read_text(encoding="utf-8")).substitute(values)
    return out


def scaffold(name: str, dest: Path | str = ".") -> Path:
    """Create ``dest/dovetail-<name>/`` and return its path; refuses to overwrite."""
    check_name(name)
    from core.plugins import discover  # noqa: PLC0415 - core.plugins -> core.cli -> core.cli_commands imports this module

    taken = discover()
    if name in taken:
        raise DovetailError(f"a plugin named '{name}' is already installed ({taken[name].source}); "
                            "choose another name")
    root = Path(dest) / names(name)["dist"]
    if root.exists():
        raise DovetailError(f"{root} already exists; remove it or choose another --dest")
    files = render(name)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if path.suffix == ".po":
            compile_catalogue(path)
    return root


def compile_catalogue(po: Path) -> Path:
    """Write ``messages.mo`` next to ``po`` (what ``pybabel compile`` does), so the new
    plugin's Chinese texts work before anyone runs pybabel."""
    with po.open("rb") as fh:
        catalogue = read_po(fh)
    mo = po.with_suffix(".mo")
    with mo.open("wb") as fh:
        write_mo(fh, catalogue)
    return mo


__all__ = ["scaffold", "render", "check_name", "names", "compile_catalogue"]
