"""Optional dependencies: a missing extra is one clear line naming what to install."""

import sys

import pytest

from core import extras
from core.errors import DovetailError


@pytest.mark.parametrize(("module", "extra"), [("faker", "demo"), ("redis", "redis"), ("psycopg", "postgresql")])
def test_a_missing_extra_names_the_extra_to_install(monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes ``import module`` raise ImportError
    with pytest.raises(DovetailError) as exc:
        extras.require(module, "Something")
    assert str(exc.value) == f"Something needs the '{extra}' extra: pip install 'dovetail[{extra}]'"
    assert "\n" not in str(exc.value)


def test_an_installed_extra_is_returned():
    assert extras.require("redis", "x").__name__ == "redis"


def test_a_postgresql_url_without_psycopg_is_refused_before_connecting(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(DovetailError, match=r"pip install 'dovetail\[postgresql\]'"):
        extras.check_database_driver("postgresql+psycopg://u@h/db")
    extras.check_database_driver("sqlite:///x.db")  # SQLite needs no extra


def test_demo_data_without_faker_asks_for_the_demo_extra(monkeypatch):
    from plugins.crm.demo import populate

    monkeypatch.setitem(sys.modules, "faker", None)
    with pytest.raises(DovetailError, match=r"Demo data needs the 'demo' extra"):
        populate(1.0, 42)
