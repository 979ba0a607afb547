"""Commission rules: ``config/commission.yaml`` (setting ``commission_file``), one rule per
product category, loaded with the core's line-numbered YAML loader.

::

    categories:
      美容护肤: {percent: 10}        # 10 % of the line's net amount
      厨具水具: {per_unit: 15.00}    # 15.00 per net unit sold
    default: {percent: 3}           # optional: products under no ruled category

A category's rule also covers its subcategories unless they have their own. Lines under no
rule (and no ``default``) earn nothing but still count in the rep's sales (the cap's base).

Mistakes are errors located as ``file:line:column`` (YAML syntax, duplicate category, unknown
key, neither or both of ``percent``/``per_unit``, a negative or over-precise number, a category
the catalogue does not have). A rule set that *could* pay more than the cap is a **warning**:
a ``percent`` above ``commission_cap`` × 100, or a ``per_unit`` above ``commission_cap`` × the
price of an active product it covers. The cap is applied to every statement anyway.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import select

from core.config import YamlDoc, parse_yaml, validate_doc
from core.db import db, quantize
from core.errors import ConfigError, ConfigIssue
from core.state import dovetail
from plugins.performance.sources import Category, Product

DEFAULT_CAP = Decimal("0.30")


def _places(limit: int):
    def check(value: Decimal) -> None:
        exp = value.as_tuple().exponent
        if isinstance(exp, int) and exp < -limit:
            raise MarshmallowError(f"At most {limit} decimal places.")

    return check


class RuleSchema(Schema):
    class Meta:
        unknown = RAISE

    percent = fields.Decimal(validate=[validate.Range(min=0, max=100), _places(4)],
                             metadata={"description": "Percent of the line's net amount (0–100)."})
    per_unit = fields.Decimal(validate=[validate.Range(min=0, max=Decimal("99999999.99")), _places(2)],
                              metadata={"description": "Fixed amount per net unit sold."})
    note = fields.String(validate=validate.Length(max=200))

    @validates_schema
    def _one_of(self, data: Mapping[str, Any], **_: Any) -> None:
        if ("percent" in data) == ("per_unit" in data):
            raise MarshmallowError("A rule has exactly one of 'percent' or 'per_unit'.")


class CommissionFile(Schema):
    class Meta:
        unknown = RAISE

    categories = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=80)),
                             values=fields.Nested(RuleSchema), load_default=dict)
    default = fields.Nested(RuleSchema, allow_none=True, load_default=None)


@dataclass(frozen=True)
class Rule:
    """One category's rule (``key`` is the category name, or ``default``)."""

    key: str
    percent: Decimal | None = None
    per_unit: Decimal | None = None

    @property
    def label(self) -> str:
        if self.percent is not None:
            return f"{self.key}: {self.percent.normalize():f}%"
        return f"{self.key}: {self.per_unit} per unit"

    def raw_amount(self, base: Decimal, quantity: int) -> Decimal:
        """The unrounded commission on ``base`` (net amount) / ``quantity`` (net units)."""
        if self.percent is not None:
            return base * self.percent / Decimal(100)
        return (self.per_unit or Decimal(0)) * quantity


@dataclass
class RuleSet:
    """The rules in force: per category id (after inheritance), plus the default."""

    file: str
    digest: str
    rules: dict[str, Rule] = field(default_factory=dict)  # category name → rule
    default: Rule | None = None
    category_ids: dict[str, int] = field(default_factory=dict)
    parents: dict[int, int | None] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)  # warnings (errors raise)

    def rule_for(self, category_id: int | None) -> Rule | None:
        """The rule of the category or its nearest ruled parent, else the default."""
        seen: set[int] = set()
        cid = category_id
        while cid is not None and cid not in seen:
            seen.add(cid)
            name = self.names.get(cid)
            if name is not None and name in self.rules:
                return self.rules[name]
            cid = self.parents.get(cid)
        return self.default

    @property
    def warnings(self) -> list[str]:
        return [str(i) for i in self.issues]

    def as_dict(self) -> dict[str, Any]:
        def one(r: Rule) -> dict[str, Any]:
            return {"category": r.key, "category_id": self.category_ids.get(r.key),
                    "percent": None if r.percent is None else str(r.percent),
                    "per_unit": None if r.per_unit is None else str(r.per_unit), "label": r.label}

        return {"file": self.file, "digest": self.digest,
                "rules": [one(r) for r in self.rules.values()],
                "default": one(self.default) if self.default else None}


def cap_rate() -> Decimal:
    raw = dovetail().settings("performance").get("commission_cap", DEFAULT_CAP)
    return Decimal(str(raw))


def rules_path() -> tuple[Path, str]:
    dv = dovetail()
    name = dv.settings("performance").get("commission_file") or "commission.yaml"
    path = Path(dv.config.config_dir) / name
    try:
        display = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        display = str(path)
    return path, display


def _issue(doc: YamlDoc, path: tuple[Any, ...], message: str, *, key: bool = False,
           severity: str = "error") -> ConfigIssue:
    return doc.issue(path, message, key=key, severity=severity)


def _catalogue() -> tuple[dict[str, int], dict[int, int | None], dict[int, str]]:
    rows = db.session.execute(select(Category.id, Category.name, Category.parent_id)).all()
    return ({r.name: r.id for r in rows}, {r.id: r.parent_id for r in rows}, {r.id: r.name for r in rows})


def _cap_warnings(doc: YamlDoc, rs: RuleSet, cap: Decimal) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    limit_pct = cap * 100
    entries: list[tuple[tuple[Any, ...], Rule]] = [(("categories", r.key), r) for r in rs.rules.values()]
    if rs.default is not None:
        entries.append((("default",), rs.default))
    per_unit_rules = [r for _p, r in entries if r.per_unit is not None]
    offenders: dict[str, list[tuple[str, Decimal]]] = {}
    if per_unit_rules:
        for sku, price, cid in db.session.execute(
                select(Product.sku, Product.price, Product.category_id).where(Product.active.is_(True))
                .order_by(Product.sku)):
            rule = rs.rule_for(cid)
            if rule is not None and rule.per_unit is not None and rule.per_unit > cap * price:
                offenders.setdefault(rule.key, []).append((sku, price))
    for path, r in entries:
        if r.percent is not None and r.percent > limit_pct:
            out.append(_issue(doc, path + ("percent",), f"{r.label} is above the commission cap of "
                              f"{limit_pct.normalize():f}% of the rep's own sales; the cap will cut "
                              "every statement it applies to", severity="warning"))
        if r.per_unit is not None and offenders.get(r.key):
            items = offenders[r.key]
            shown = ", ".join(f"{sku} at {price}" for sku, price in items[:3])
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            out.append(_issue(doc, path + ("per_unit",), f"{r.label} is more than "
                              f"{(cap * 100).normalize():f}% of the price of {shown}{more}; the cap "
                              "will cut statements selling them", severity="warning"))
    return out


def _rule(key: str, raw: Mapping[str, Any]) -> Rule:
    per_unit = raw.get("per_unit")
    return Rule(key, raw.get("percent"), quantize(per_unit) if per_unit is not None else None)


def parse_rules(text: str, display: str, *, cap: Decimal | None = None,
                with_catalogue: bool = True) -> RuleSet:
    """Parse and check a rules text; raise :class:`ConfigError` listing every error.

    Warnings (rules that could exceed the cap) are returned in ``RuleSet.issues``.
    """
    doc = parse_yaml(text, display)
    if doc.data is not None and not isinstance(doc.data, Mapping):
        raise ConfigError([_issue(doc, (), "the file must be a mapping with 'categories' (and 'default')")])
    data = validate_doc(doc, CommissionFile())
    rs = RuleSet(file=display, digest=hashlib.sha256(text.encode("utf-8")).hexdigest())
    for name, raw in data["categories"].items():
        rs.rules[name] = _rule(name, raw)
    if data.get("default"):
        rs.default = _rule("default", data["default"])
    if not with_catalogue:
        return rs
    rs.category_ids, rs.parents, rs.names = _catalogue()
    errors = []
    for name in rs.rules:
        if name not in rs.category_ids:
            close = difflib.get_close_matches(name, list(rs.category_ids), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            errors.append(_issue(doc, ("categories", name), f"no product category named '{name}' in the "
                                 f"catalogue{hint}", key=True))
    if errors:
        raise ConfigError(errors)
    rs.issues = _cap_warnings(doc, rs, cap if cap is not None else cap_rate())
    return rs


def load_rules() -> RuleSet:
    """The rules in force (read from the file on every call: it is small and rarely used).

    A missing file means no rules: every line earns nothing (reported as a warning).
    """
    path, display = rules_path()
    if not path.exists():
        rs = RuleSet(file=display, digest="")
        rs.category_ids, rs.parents, rs.names = _catalogue()
        rs.issues = [ConfigIssue(display, 1, 1, "file not found: no commission rules, every line earns "
                                 "0.00", "warning")]
        return rs
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(display, 1, 1, f"cannot read: {exc}")]) from None
    return parse_rules(text, display)


def check_text(text: str, display: str) -> list[ConfigIssue]:
    """Every error and warning of a rules text, without installing anything."""
    try:
        return parse_rules(text, display).issues
    except ConfigError as exc:
        return exc.issues


def check_file() -> list[ConfigIssue]:
    try:
        return load_rules().issues
    except ConfigError as exc:
        return exc.issues
