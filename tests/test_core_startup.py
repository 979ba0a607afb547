"""Start-up refuses a broken plugin set with ONE clear message naming the plugin:
unknown plugin, missing dependency, cycle, import error, hook mismatch, unknown hook,
namespace and duplicate violations. The real console script prints no traceback."""

from __future__ import annotations

import types

import pytest
from conftest import plugin_source

from core import hookimpl
from core.app import create_app
from core.errors import PluginError
from core.registry import Permission, PluginManifest


def module(name: str, *, version: str = "1.0.0", depends: tuple[str, ...] = (), **hooks) -> types.ModuleType:
    """A plugin module object for ``create_app(extra_plugins=...)``."""
    mod = types.ModuleType(f"{name}_mod")

    @hookimpl
    def plugin_manifest():
        return PluginManifest(name=name, version=version, depends=depends)

    mod.plugin_manifest = plugin_manifest
    for hook, fn in hooks.items():
        setattr(mod, hook, hookimpl(fn))
    return mod


def build(tmp_path, enabled, extra):
    cfg = tmp_path / "config"
    cfg.mkdir(exist_ok=True)
    (cfg / "roles.yaml").write_text("roles:\n  admin: {permissions: ['*'], scope: all}\n")
    return create_app(cfg, plugins=enabled, extra_plugins=extra, testing=True,
                      config={"database_url": f"sqlite:///{tmp_path}/x.db", "secret_key": "x"})


def refused(tmp_path, enabled, extra) -> PluginError:
    with pytest.raises(PluginError) as info:
        build(tmp_path, enabled, extra)
    return info.value


def test_unknown_missing_cycle_are_refused_naming_the_plugin(tmp_path):
    a = module("pa")
    exc = refused(tmp_path, ["pa", "nope"], {"pa": a})
    assert exc.plugin == "nope" and "unknown plugin" in exc.message
    b = module("pb", depends=("pa",))
    exc = refused(tmp_path, ["pb"], {"pa": a, "pb": b})
    assert exc.plugin == "pb" and "depends on 'pa'" in exc.message and "plugins enable pa" in exc.message
    c1, c2 = module("c1", depends=("c2",)), module("c2", depends=("c1",))
    exc = refused(tmp_path, ["c1", "c2"], {"c1": c1, "c2": c2})
    assert "dependency cycle" in exc.message and "c1" in exc.message and "c2" in exc.message


def test_import_error_and_hook_problems_are_refused_naming_the_plugin(tmp_path):
    exc = refused(tmp_path, ["ghosty"], {"ghosty": "no_such_module_for_dovetail_tests"})
    assert exc.plugin == "ghosty" and "failed to import" in exc.message
    bad_sig = module("sig", register_permissions=lambda nonsense: [])
    exc = refused(tmp_path, ["sig"], {"sig": bad_sig})
    assert exc.plugin == "sig" and "nonsense" in exc.message
    typo = module("typo", register_permisions=lambda: [])
    exc = refused(tmp_path, ["typo"], {"typo": typo})
    assert exc.plugin == "typo" and "register_permisions" in exc.message


def test_namespaces_and_duplicates_are_enforced(tmp_path):
    outside = module("ns1", register_permissions=lambda: [Permission("crm.customer.read")])
    exc = refused(tmp_path, ["ns1"], {"ns1": outside})
    assert exc.plugin == "ns1" and "outside the plugin's namespace" in exc.message
    wrong = module("ns2", register_permissions=lambda: ["ns2.x.read"])
    exc = refused(tmp_path, ["ns2"], {"ns2": wrong})
    assert exc.plugin == "ns2" and "expected Permission" in exc.message
    raising = module("ns3", register_permissions=lambda: 1 / 0)
    exc = refused(tmp_path, ["ns3"], {"ns3": raising})
    assert exc.plugin == "ns3" and "ZeroDivisionError" in exc.message


def _one_clear_line(proc, name: str, words: str) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(err.splitlines()) == 1, err
    assert f"'{name}'" in err and words in err, err


def test_console_script_prints_one_line_and_no_traceback(tmp_path, make_dist, config_dir, run_dovetail):
    site = make_dist({
        "sa": plugin_source("sa"),
        "sb": plugin_source("sb", depends=("sa",)),
        "cy1": plugin_source("cy1", depends=("cy2",)),
        "cy2": plugin_source("cy2", depends=("cy1",)),
        "boom": plugin_source("boom", prefix="import no_such_dependency_for_boom\n"),
    }, on_path=False)
    cases = [(["sa", "unknownplug"], "unknownplug", "unknown plugin"),
             (["sb"], "sb", "depends on 'sa'"),
             (["cy1", "cy2"], "cy1", "dependency cycle"),
             (["boom"], "boom", "No module named 'no_such_dependency_for_boom'")]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(cases)) as pool:  # independent processes: run them side by side
        procs = list(pool.map(lambda case: run_dovetail("--config", str(config_dir(case[0])), "users", "list",
                                                        pythonpath=[site]), cases))
    for (_enabled, name, words), proc in zip(cases, procs, strict=True):
        _one_clear_line(proc, name, words)
        assert proc.stderr.startswith("error: plugin ")
    # and the same plugins are listed fine
    proc = run_dovetail("--config", str(config_dir(["sa"])), "plugins", "list", pythonpath=[site])
    assert proc.returncode == 0, proc.stderr
    assert "boom" in proc.stdout and "failed to import" in proc.stdout
