"""Project (core) tests. The fixtures shipped in core.testing (pytest11) do most of the
work; this file adds what only the core's own tests need:

* ``make_dist``: write small plugin modules plus a ``*.dist-info`` with entry points into
  a folder, so Dovetail discovers them exactly like pip-installed plugins (put the folder
  on ``sys.path`` / ``PYTHONPATH``);
* ``loyalty_dist``: the external test plugin (tests/external_plugin) built into a wheel
  and installed with ``pip install --no-deps --target`` (the venv is left untouched);
* ``cli``: run the ``dovetail`` command in-process against a config folder;
* ``run_dovetail``: run the real console script in a subprocess.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import textwrap
import tomllib
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXTERNAL = Path(__file__).resolve().parent / "external_plugin"
DOVETAIL = Path(sys.executable).with_name("dovetail")

FAST_SECURITY = "security:\n  argon2_time_cost: 1\n  argon2_memory_kib: 64\n"


@pytest.fixture
def dovetail_plugins():
    """Core tests run with no business plugin unless they say otherwise."""
    return []


# ---------------------------------------------------------------------------
# Plugin distributions made at test time
# ---------------------------------------------------------------------------


def write_dist(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str],
               version: str = "1.0.0") -> Path:
    """Write ``modules`` (dotted name → source) and ``<dist>-<version>.dist-info`` under
    ``root``; ``entry_points`` maps plugin name → module in group ``dovetail.plugins``."""
    root.mkdir(parents=True, exist_ok=True)
    for dotted, source in modules.items():
        parts = dotted.split(".")
        for i in range(1, len(parts)):
            pkg = root.joinpath(*parts[:i])
            pkg.mkdir(exist_ok=True)
            (pkg / "__init__.py").touch()
        root.joinpath(*parts[:-1], parts[-1] + ".py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "".join(f"{name} = {mod}\n" for name, mod in entry_points.items())
    (info / "entry_points.txt").write_text(f"[dovetail.plugins]\n{eps}")
    return root


def plugin_source(name: str, *, version: str = "1.0.0", depends: tuple[str, ...] = (),
                  body: str = "", prefix: str = "") -> str:
    """Source of a minimal plugin module named ``name``."""
    return prefix + textwrap.dedent(f"""
        from core import hookimpl
        from core.registry import Permission, PluginManifest


        @hookimpl
        def plugin_manifest():
            return PluginManifest(name={name!r}, version={version!r}, depends={depends!r},
                                  description="test plugin {name}")


        @hookimpl
        def register_permissions():
            return [Permission("{name}.thing.read", "read things")]
        """) + textwrap.dedent(body)


@pytest.fixture
def make_dist(tmp_path, monkeypatch):
    """``make_dist({"name": source, ...}, on_path=True)`` → folder with one distribution
    per plugin (module ``<name>_plugin``); prepended to sys.path unless ``on_path=False``."""

    def factory(plugins: dict[str, str], on_path: bool = True) -> Path:
        root = tmp_path / f"site-{uuid.uuid4().hex[:6]}"
        for name, source in plugins.items():
            write_dist(root, f"dovetail-{name}", {f"{name}_plugin": source}, {name: f"{name}_plugin"})
        if on_path:
            monkeypatch.syspath_prepend(str(root))
        return root

    return factory


def build_wheel(src: Path, out: Path) -> Path:
    """Build a pure-Python wheel from a PEP 621 project (packages + their data files)."""
    meta = tomllib.loads((src / "pyproject.toml").read_text())
    project = meta["project"]
    name, version = project["name"], project["version"]
    norm = name.replace("-", "_")
    includes = [p.rstrip("*") for p in meta["tool"]["setuptools"]["packages"]["find"]["include"]]
    files: dict[str, bytes] = {}
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if path.is_file() and "__pycache__" not in rel and any(rel.startswith(i) for i in includes):
            files[rel] = path.read_bytes()
    info = f"{norm}-{version}.dist-info"
    eps = ""
    for group, entries in project.get("entry-points", {}).items():
        eps += f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: dovetail-tests\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n")
    files[f"{info}/entry_points.txt"] = eps.encode()
    record = []
    for rel, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for rel, data in files.items():
            zf.writestr(rel, data)
    return wheel


@pytest.fixture(scope="session")
def loyalty_dist(tmp_path_factory) -> Path:
    """tests/external_plugin installed with pip into a private folder (returned)."""
    base = tmp_path_factory.mktemp("loyalty")
    wheel = build_wheel(EXTERNAL, base / "dist")
    target = base / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--disable-pip-version-check", "--quiet", "--target", str(target), str(wheel)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return target


@pytest.fixture
def loyalty_on_path(loyalty_dist, monkeypatch) -> Path:
    monkeypatch.syspath_prepend(str(loyalty_dist))
    return loyalty_dist


# ---------------------------------------------------------------------------
# Config folders and the CLI
# ---------------------------------------------------------------------------

ADMIN_ROLES = "roles:\n  admin:\n    permissions: ['*']\n    scope: all\n"


def write_config(folder: Path, enabled: list[str], *, roles: str = ADMIN_ROLES, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    items = "".join(f"    - {n}\n" for n in enabled)
    (folder / "dovetail.yaml").write_text(
        "# test instance\nplugins:\n  enabled:" + ("\n" + items if enabled else " []\n")
        + "locale: en\n" + FAST_SECURITY + extra)
    (folder / "roles.yaml").write_text(roles)
    return folder


@pytest.fixture
def config_dir(tmp_path) -> Any:
    """``config_dir(enabled=[...], roles=..., extra=...)`` → a fresh config folder."""

    def factory(enabled: list[str] | None = None, **kw: Any) -> Path:
        return write_config(tmp_path / f"cfg-{uuid.uuid4().hex[:6]}" / "config", enabled or [], **kw)

    return factory


@pytest.fixture
def cli(dovetail_database_url) -> Any:
    """``cli(config, "users", "list", input=...)`` → click Result; a fresh app per call."""
    from click.testing import CliRunner

    from core.cli import cli as main

    def invoke(config: Path, *args: str, input: str | None = None, env: dict | None = None) -> Any:
        runner = CliRunner()
        return runner.invoke(main, ["--config", str(config), *args], input=input,
                             env={"DOVETAIL_DATABASE_URL": dovetail_database_url,
                                  "DOVETAIL_SECRET_KEY": "test", **(env or {})},
                             catch_exceptions=False)

    return invoke


@pytest.fixture
def run_dovetail(dovetail_database_url) -> Any:
    """Run the installed ``dovetail`` console script in a subprocess."""

    def run(*args: str, pythonpath: list[Path] = (), input: str | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env.update(DOVETAIL_DATABASE_URL=dovetail_database_url, DOVETAIL_SECRET_KEY="test")
        env["PYTHONPATH"] = os.pathsep.join([str(p) for p in pythonpath] + [env.get("PYTHONPATH", "")])
        exe = [str(DOVETAIL)] if DOVETAIL.exists() else [sys.executable, "-c", "from core.cli import main; main()"]
        return subprocess.run([*exe, *args], capture_output=True, text=True, env=env, input=input,
                              cwd=str(cwd or REPO), timeout=120)

    return run
