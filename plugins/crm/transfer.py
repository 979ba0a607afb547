"""Customer import (CSV/XLSX, streaming, row-level error report) and export.

Import rules:

* header row first; columns are the export's (``name, phone, phones, email, address,
  region, tier, tags, source, owner, consent_marketing, notes, external_code,
  custom.<key>``) or their Chinese names (姓名, 手机 …); export-only columns are ignored;
* a row matches an existing customer by ``external_code``, else by normalised phone;
  a match is updated with the non-empty cells of the row, so re-running the same file
  creates no duplicates; rows later in the file match rows earlier in it too;
* a bad row is skipped and reported as ``line N, column C: reason`` (the spreadsheet
  line, header = line 1); good rows are committed in chunks;
* ``owner`` is a username; rows without one go to ``default_owner`` or to the pool.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import select

from core import custom
from core.auth import normalize_username
from core.db import db, utcnow
from core.errors import DovetailError, ValidationError
from core.importer import ImportReport, Problems, RowImport, flatten_messages, run_import
from core.models import User
from core.scope import can_read_personal, log_personal_access, mask, restrict
from plugins.crm import services
from plugins.crm.models import Customer
from plugins.crm.schemas import CustomerIn
from plugins.crm.services import PURCHASE_FIELDS, can_see_purchases, check_tier

EXPORT_COLUMNS = ["id", "external_code", "name", "phone", "phones", "email", "address", "region", "tier",
                  "tags", "source", "owner", "consent_marketing", "consent_at", "notes", "order_count",
                  "total_spent", "last_purchase_at", "last_contact_at", "created_at"]
IMPORT_COLUMNS = {"external_code", "name", "phone", "phones", "email", "address", "region", "tier", "tags",
                  "source", "owner", "consent_marketing", "notes"}
EXPORT_ONLY = {"id", "consent_at", "order_count", "total_spent", "last_purchase_at", "last_contact_at",
               "created_at"}
ALIASES = {"姓名": "name", "客户名称": "name", "名称": "name", "手机": "phone", "手机号": "phone",
           "电话": "phone", "其他电话": "phones", "邮箱": "email", "电子邮件": "email", "地址": "address",
           "地区": "region", "区域": "region", "等级": "tier", "客户等级": "tier", "标签": "tags",
           "来源": "source", "负责人": "owner", "所属销售": "owner", "营销同意": "consent_marketing",
           "备注": "notes", "编码": "external_code", "客户编码": "external_code", "外部编码": "external_code"}
TRUE = {"1", "true", "yes", "y", "是", "同意", "t"}
FALSE = {"0", "false", "no", "n", "否", "不同意", "f"}
_SPLIT = re.compile(r"[;,；，|]")


# ---------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------


def _row_input(row: dict[str, str], errors: list[tuple[str, str]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in ("name", "phone", "email", "address", "region", "tier", "source", "notes", "external_code"):
        if row.get(key):
            data[key] = row[key]
    if row.get("phones"):
        data["phones"] = [p.strip() for p in _SPLIT.split(row["phones"]) if p.strip()]
    if row.get("tags"):
        data["tags"] = [t.strip() for t in _SPLIT.split(row["tags"]) if t.strip()]
    raw = row.get("consent_marketing", "")
    if raw:
        if raw.lower() in TRUE:
            data["consent_marketing"] = True
        elif raw.lower() in FALSE:
            data["consent_marketing"] = False
        else:
            errors.append(("consent_marketing", f"'{raw}' is not yes/no."))
    values = {k[len("custom."):]: v for k, v in row.items() if k.startswith("custom.") and v != ""}
    if values:
        data["custom"] = values
    return data


class _Matcher:
    """Existing customers by external code and by every phone, plus this file's new rows.

    With a ``user``, only customers in their scope match (an API import never updates
    another rep's customer); external codes stay unique across everyone's customers.
    """

    TAKEN = object()

    def __init__(self, user: User | None = None) -> None:
        self.by_code: dict[str, Any] = {}
        self.by_phone: dict[str, Any] = {}
        self.all_codes: set[str] = set()
        visible = None
        if user is not None:
            visible = set(db.session.scalars(restrict(select(Customer.id), Customer, user)))
        for cid, code, phone, phones in db.session.execute(
                select(Customer.id, Customer.external_code, Customer.phone, Customer.phones)):
            if code:
                self.all_codes.add(code)
            if visible is not None and cid not in visible:
                continue
            if code:
                self.by_code[code] = cid
            for p in [phone, *(phones or [])]:
                if p and p not in self.by_phone:
                    self.by_phone[p] = cid

    def find(self, data: dict[str, Any]) -> Any:
        code = data.get("external_code")
        if code and code in self.by_code:
            return self.by_code[code]
        if code and code in self.all_codes:
            return self.TAKEN
        for p in [data.get("phone"), *(data.get("phones") or [])]:
            if p and p in self.by_phone:
                return self.by_phone[p]
        return None

    def add(self, c: Customer) -> None:
        if c.external_code:
            self.by_code[c.external_code] = c
            self.all_codes.add(c.external_code)
        for p in c.phones or []:
            self.by_phone.setdefault(p, c)


class CustomerImport(RowImport):
    """Customers matched by external code, else by phone (see the module docstring)."""

    noun = "customers"
    columns = frozenset(IMPORT_COLUMNS | EXPORT_ONLY)
    aliases = ALIASES
    schema = CustomerIn()

    def __init__(self, user: User | None = None, default_owner: User | None = None) -> None:
        self.user = user
        self.default_owner = default_owner
        self.owners: dict[str, int | None] = {}
        self.matcher = _Matcher(user)
        self.now = utcnow()

    def check_header(self, path: Path, header: list[str]) -> None:
        if "name" not in header:
            raise ValidationError(f"'{path.name}' lacks the column 'name' (姓名).",
                                  fields={"file": ["Missing column name."]})

    def parse(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        problems: Problems = []
        data = _row_input(row, problems)
        if row.get("owner"):
            data["owner"] = row["owner"]
        return data, problems

    def validate(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        raw, problems = self.parse(line, row)
        owner = raw.pop("owner", None)
        try:
            data = self.schema.load(raw, partial=False) if self.schema is not None else raw
        except MarshmallowError as err:
            problems = problems + flatten_messages(err.messages)
            data = {}
        data["_owner"] = owner
        return data, problems + self.check(line, data, set())

    def check(self, line: int, data: dict[str, Any], failed: set[str]) -> Problems:
        problems: Problems = []
        if "tier" in data:
            try:
                check_tier(data["tier"])
            except ValidationError as exc:
                problems.extend(flatten_messages(exc.fields))
        owner_id = self.default_owner.id if self.default_owner else None
        uname = data.get("_owner")
        if uname:
            if uname not in self.owners:
                self.owners[uname] = db.session.scalar(select(User.id).where(
                    User.username == normalize_username(uname, strict=False), User.active.is_(True)))
            owner_id = self.owners[uname]
            if owner_id is None:
                problems.append(("owner", f"No active user '{uname}'."))
            elif self.user is not None and owner_id != self.user.id:
                try:  # the same rules as the API: crm.pool.manage, and a manager's own team
                    services._check_owner(owner_id, self.user)
                except DovetailError as exc:
                    problems.append(("owner", next(iter(exc.fields.get("owner_id", [])), None) or exc.message))
        data["owner_id"] = owner_id
        if data.get("custom") and not problems:
            try:
                data["custom"] = custom.validate("customer", data["custom"], self.user, partial=True)
            except ValidationError as exc:
                problems.extend(flatten_messages(exc.fields))
        return problems

    def save(self, line: int, data: dict[str, Any]) -> str:
        match = self.matcher.find(data)
        if match is _Matcher.TAKEN:
            raise ValidationError("Already used by another customer.",
                                  fields={"external_code": ["Already used by another customer."]})
        owner_id, now = data["owner_id"], self.now
        if match is None:
            c = Customer(name=data["name"], tier=check_tier(data.get("tier")), tags=data.get("tags", []),
                         email=data.get("email"), address=data.get("address"), region=data.get("region"),
                         source=data.get("source") or "import", notes=data.get("notes"),
                         external_code=data.get("external_code"), custom=data.get("custom") or {},
                         consent_marketing=bool(data.get("consent_marketing", False)),
                         consent_at=now if "consent_marketing" in data else None,
                         owner_id=owner_id, owned_since=now if owner_id else None,
                         pool_entered_at=None if owner_id else now,
                         created_by_id=self.user.id if self.user else None)
            services._apply_phones(c, data)
            if c.phones is None:
                c.phones = []
            db.session.add(c)
            self.matcher.add(c)
            return "created"
        c = match if isinstance(match, Customer) else db.session.get(Customer, match)
        if _update(c, data, owner_id if data.get("_owner") else None, now):
            self.matcher.add(c)
            return "updated"
        return "unchanged"


def import_customers(path: str | Path, *, user: User | None = None, default_owner: User | None = None,
                     dry_run: bool = False, batch: int = 500,
                     progress: Callable[[int], Any] | None = None) -> ImportReport:
    """Import a CSV/XLSX file of customers; commits good rows in batches; returns the report."""
    return run_import(CustomerImport(user, default_owner), path, dry_run=dry_run, batch=batch, progress=progress)


def _update(c: Customer, data: dict[str, Any], owner_id: int | None, now: datetime) -> bool:
    before = (c.name, c.email, c.address, c.region, c.tier, list(c.tags or []), c.source, c.notes,
              c.external_code, dict(c.custom or {}), c.consent_marketing, c.phone, list(c.phones or []),
              c.owner_id)
    for key in ("name", "email", "address", "region", "tier", "source", "notes", "external_code"):
        if data.get(key) is not None and getattr(c, key) != data[key]:
            setattr(c, key, data[key])
    if data.get("tags"):
        merged = list(dict.fromkeys([*(c.tags or []), *data["tags"]]))
        if merged != list(c.tags or []):
            c.tags = merged
    if data.get("custom"):
        new = {**(c.custom or {}), **data["custom"]}
        if new != (c.custom or {}):
            c.custom = new
    if "consent_marketing" in data and bool(data["consent_marketing"]) != c.consent_marketing:
        c.consent_marketing = bool(data["consent_marketing"])
        c.consent_at = now
    if data.get("phone") or data.get("phones"):
        phones = list(c.phones or [])
        extra = [p for p in [data.get("phone"), *(data.get("phones") or [])] if p and p not in phones]
        if extra:
            services._apply_phones(c, {"phone": c.phone or extra[0], "phones": phones + extra})
    if owner_id is not None and owner_id != c.owner_id:
        c.owner_id, c.owned_since, c.pool_entered_at = owner_id, now, None
    after = (c.name, c.email, c.address, c.region, c.tier, list(c.tags or []), c.source, c.notes,
             c.external_code, dict(c.custom or {}), c.consent_marketing, c.phone, list(c.phones or []),
             c.owner_id)
    return before != after


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


def export_header(user: User | None) -> tuple[list[str], list[str]]:
    """Column names (purchase figures only for users who may see them) and custom keys."""
    keys = [k for k, _label in custom.columns("customer", user)]
    columns = [c for c in EXPORT_COLUMNS if can_see_purchases(user) or c not in PURCHASE_FIELDS]
    return columns + [f"custom.{k}" for k in keys], keys


def export_rows(stmt: Any, user: User | None, custom_keys: list[str], *, batch: int = 500,
                channel: str = "export") -> Iterator[list[Any]]:
    """Rows of ``stmt`` (customers), masked for users without the personal right, streamed;
    the columns of :func:`export_header`."""
    personal = user is None or can_read_personal(Customer, user)
    purchases = can_see_purchases(user)
    usernames: dict[int, str] = {}
    last_id = 0
    while True:
        chunk = db.session.scalars(stmt.where(Customer.id > last_id).order_by(Customer.id).limit(batch)).all()
        if not chunk:
            return
        last_id = chunk[-1].id
        if personal and user is not None:
            log_personal_access(Customer, [c.id for c in chunk], user, channel)
        for c in chunk:
            data = {"name": c.name, "phone": c.phone, "phones": list(c.phones or []), "email": c.email,
                    "address": c.address}
            if not personal:
                data = mask(Customer, data, user)
            if c.owner_id and c.owner_id not in usernames:
                usernames[c.owner_id] = db.session.scalar(select(User.username).where(User.id == c.owner_id))
            values = custom.dump("customer", c.custom, user) if user is not None else dict(c.custom or {})
            yield [c.id, c.external_code, data["name"], data["phone"], data["phones"], data["email"],
                   data["address"], c.region, c.tier, list(c.tags or []), c.source,
                   usernames.get(c.owner_id) if c.owner_id else None,
                   "yes" if c.consent_marketing else "no", c.consent_at, c.notes,
                   *([c.order_count, c.total_spent, c.last_purchase_at] if purchases else []),
                   c.last_contact_at, c.created_at,
                   *[values.get(k) for k in custom_keys]]
        for c in chunk:  # keep memory flat on large exports
            db.session.expunge(c)
