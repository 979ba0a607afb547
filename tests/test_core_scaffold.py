"""``dovetail plugins new NAME`` writes a package that passes its own tests (run in a
subprocess, the package on PYTHONPATH only: the venv is not modified)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.errors import DovetailError
from core.scaffold import check_name, scaffold


def test_scaffolded_plugin_passes_its_own_tests(tmp_path, config_dir, cli):
    result = cli(config_dir([]), "plugins", "new", "rewards", "--dest", str(tmp_path))
    assert result.exit_code == 0, result.output
    root = tmp_path / "dovetail-rewards"
    for rel in ("pyproject.toml", "README.md", "dovetail_rewards/plugin.py", "dovetail_rewards/models.py",
                "dovetail_rewards/api.py", "dovetail_rewards/schemas.py", "dovetail_rewards/web.py",
                "dovetail_rewards/cli.py", "dovetail_rewards/templates/rewards/index.html",
                "dovetail_rewards/migrations/versions/0001_initial.py", "tests/test_rewards.py", "babel.cfg",
                "dovetail_rewards/translations/zh_Hans_CN/LC_MESSAGES/messages.po",
                "dovetail_rewards/translations/zh_Hans_CN/LC_MESSAGES/messages.mo"):
        assert (root / rel).is_file(), rel
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points."dovetail.plugins"]\nrewards = "dovetail_rewards.plugin"' in pyproject
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q", str(root)],
                          cwd=str(root), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "14 passed" in proc.stdout, proc.stdout[-2000:]  # 7 conformance tests (with the contract probe)
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--line-length", "120", str(root)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize("name", ["Bad", "1abc", "a", "x-y", "class", "core", "trailing_", "dou__ble"])
def test_invalid_names_are_refused(name):
    with pytest.raises(DovetailError):
        check_name(name)


def test_refuses_to_overwrite_or_shadow_an_installed_plugin(tmp_path, config_dir, cli):
    (tmp_path / "dovetail-points").mkdir()
    with pytest.raises(DovetailError, match="already exists"):
        scaffold("points", tmp_path)
    result = cli(config_dir([]), "plugins", "new", "catalog", "--dest", str(tmp_path))
    assert result.exit_code == 1 and "already installed" in result.output
