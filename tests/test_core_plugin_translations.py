"""A plugin's own ``translations/`` folder (next to its plugin module) is loaded with the
core catalogue while the plugin is enabled; the core's text wins on a shared message id."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from flask_babel import force_locale, gettext

from core.scaffold import compile_catalogue

PO = """\
msgid ""
msgstr ""
"Language: zh_Hans_CN\\n"
"Content-Type: text/plain; charset=utf-8\\n"

msgid "Lingo greeting"
msgstr "你好，来自插件"

msgid "No records."
msgstr "插件想改的文字"
"""


@pytest.fixture
def lingo_dir(tmp_path_factory, monkeypatch) -> Path:
    root = tmp_path_factory.mktemp("lingo")
    (root / "lingo_plugin.py").write_text(textwrap.dedent("""
        from core import hookimpl
        from core.registry import PluginManifest


        @hookimpl
        def plugin_manifest():
            return PluginManifest(name="lingo", version="1.0.0", description="test plugin with texts")
        """))
    po = root / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text(PO, encoding="utf-8")
    compile_catalogue(po)
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("lingo_plugin", None)


@pytest.fixture
def dovetail_plugins():
    return ["lingo"]


@pytest.fixture
def dovetail_extra_plugins(lingo_dir):
    return {"lingo": "lingo_plugin"}


def test_the_enabled_plugin_catalogue_is_loaded_before_the_core(app, lingo_dir):
    from core.web import translation_directories

    dirs = translation_directories(app)
    assert dirs[0] == str(lingo_dir / "translations")
    assert dirs[-1].endswith("core/translations")
    with app.test_request_context("/"), force_locale("zh_CN"):
        assert gettext("Lingo greeting") == "你好，来自插件"  # the plugin's catalogue
        assert gettext("No records.") == "暂无记录。"  # the core's text wins
        assert gettext("Sign out") == "退出"  # the core catalogue is still loaded


@pytest.mark.parametrize("dovetail_plugins", [[]])
def test_a_disabled_plugin_catalogue_is_not_loaded(app, lingo_dir):
    from core.web import translation_directories

    assert str(lingo_dir / "translations") not in translation_directories(app)
    with app.test_request_context("/"), force_locale("zh_CN"):
        assert gettext("Lingo greeting") == "Lingo greeting"
