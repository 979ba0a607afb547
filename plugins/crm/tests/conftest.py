"""Fixtures for crm tests: crm alone, an extra role without the personal-data right,
and a small sales organisation (two teams)."""

from types import SimpleNamespace

import pytest
import yaml


@pytest.fixture
def dovetail_plugins():
    """crm alone: it depends on nothing but core (other plugins' tests cover combinations)."""
    return ["crm"]


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    """The project's config plus 'crm_analyst' (reads and exports everything, masked), and
    the lead permissions for reps (requested for config/roles.yaml; see README)."""
    path = dovetail_config_dir / "roles.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rep = data["roles"]["rep"]["permissions"]
    rep.extend(p for p in ("crm.lead.read", "crm.lead.write") if p not in rep)
    data["roles"]["crm_analyst"] = {"permissions": ["crm.customer.read", "crm.customer.export",
                                                    "crm.segment.read"], "scope": "all"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return dovetail_config_dir


@pytest.fixture
def org(make_team, make_user, api_client, admin_api):
    """Team East (rep1, rep2, manager1) and team South (rep3), each with an API client."""
    east, south = make_team("East"), make_team("South")
    users = {"rep1": make_user("rep1", "rep", team=east), "rep2": make_user("rep2", "rep", team=east),
             "manager1": make_user("manager1", "manager", team=east),
             "rep3": make_user("rep3", "rep", team=south),
             "analyst": make_user("analyst", "crm_analyst"),
             "marketer": make_user("marketer", "marketing")}
    ns = SimpleNamespace(east=east, south=south, admin=admin_api, users=users)
    for name, user in users.items():
        setattr(ns, name, api_client(user))
    return ns


@pytest.fixture
def new_customer():
    """``new_customer(client, **fields)`` → the created customer's JSON (201 checked)."""

    def create(client, **kw):
        body = {"name": "张三", "phone": "13800138000"}
        body.update(kw)
        r = client.post("/api/v1/customers", json=body)
        assert r.status_code == 201, r.json
        return r.json

    return create
