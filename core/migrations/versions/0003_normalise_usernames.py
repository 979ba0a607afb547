"""normalise user names

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-12-02 10:00:00

User names are stored in one form since core_0002's release (format characters removed,
NFKC, case-folded, stripped; ``core.auth.normalize_username``). Rows written before keep
their old spelling (``Admin``, ``bob ``) and could no longer log in: rewrite them. When two
rows collapse to one name the upgrade stops and names them, so an admin renames or disables
one first (``dovetail users``); nothing is changed in that case.

The rule is copied here on purpose: a migration must keep doing what it did when written.
"""
import unicodedata

from alembic import op
import sqlalchemy as sa

revision = 'core_0003'
down_revision = 'core_0002'
branch_labels = None
depends_on = None


def _normalise(name: str) -> str:
    def drop_format(s: str) -> str:
        return "".join(ch for ch in s if unicodedata.category(ch) != "Cf")

    name = unicodedata.normalize("NFKC", drop_format(name))
    return drop_format(unicodedata.normalize("NFKC", name.casefold())).strip()


def upgrade():
    conn = op.get_bind()
    users = sa.table("core_user", sa.column("id", sa.Integer), sa.column("username", sa.String))
    rows = conn.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id)).all()
    by_name: dict[str, list[str]] = {}
    for _id, username in rows:
        by_name.setdefault(_normalise(username), []).append(username)
    clashes = {k: v for k, v in by_name.items() if len(v) > 1}
    if clashes:
        listed = "; ".join(f"{', '.join(repr(n) for n in v)} → {k!r}" for k, v in sorted(clashes.items()))
        raise RuntimeError(
            f"core_0003: these user names become the same once normalised: {listed}. "
            "Rename or remove one of each group, then run 'dovetail db upgrade' again.")
    for id_, username in rows:
        new = _normalise(username)
        if new != username:
            conn.execute(users.update().where(users.c.id == id_).values(username=new))


def downgrade():
    pass  # the old spellings are not kept; normalised names work on the older code too
