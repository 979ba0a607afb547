"""phones stored in E.164

Rows stored before phones were kept in E.164 hold a mainland mobile as 11 digits
(``13812345678``); this rewrites them to ``+8613812345678`` in customers (primary and
further numbers), contacts and leads, so equality matches (duplicates, lead → customer,
imports) see one form. Downgrade turns ``+86`` mobiles back and leaves other numbers.

Revision ID: crm_0002
Revises: crm_0001
Create Date: 2026-12-02 12:50:00
"""
import json
import re

from alembic import op
import sqlalchemy as sa

revision = 'crm_0002'
down_revision = 'crm_0001'
branch_labels = None
depends_on = None

_OLD = re.compile(r"1\d{10}")
_NEW = re.compile(r"\+861\d{10}")


def _up(value):
    return "+86" + value if isinstance(value, str) and _OLD.fullmatch(value) else value


def _down(value):
    return value[3:] if isinstance(value, str) and _NEW.fullmatch(value) else value


def _rewrite(change):
    bind = op.get_bind()
    for table in ("crm_customer", "crm_contact", "crm_lead"):
        rows = bind.execute(sa.text(f"SELECT id, phone FROM {table} WHERE phone IS NOT NULL")).all()
        for row_id, phone in rows:
            if change(phone) != phone:
                bind.execute(sa.text(f"UPDATE {table} SET phone = :p WHERE id = :i"), {"p": change(phone), "i": row_id})
    for row_id, phones in bind.execute(sa.text("SELECT id, phones FROM crm_customer")).all():
        values = json.loads(phones) if isinstance(phones, str) else (phones or [])
        changed = [change(p) for p in values]
        if changed != values:
            value = "CAST(:p AS JSONB)" if bind.dialect.name == "postgresql" else ":p"
            bind.execute(sa.text(f"UPDATE crm_customer SET phones = {value} WHERE id = :i"),
                         {"p": json.dumps(changed), "i": row_id})


def upgrade():
    _rewrite(_up)


def downgrade():
    _rewrite(_down)
