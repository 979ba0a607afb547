"""audit sealing: entries are written unsealed and sealed into the chain later

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-12-02 11:00:00

``core_audit.sealed_seq`` is an entry's position in the hash chain, given by the sealer
(``core.audit.seal``); it and ``prev_hash``/``hash`` are NULL until then, so writers take
no lock. Entries written before this revision were chained in id order: they get
``sealed_seq = id``, which keeps that order (the sealer continues after the largest).
A partial index holds the unsealed entries only (the sealer's queue).

Downgrade refuses while unsealed entries exist (``dovetail audit seal`` first). An older
release walks the chain by id: if entries were sealed out of id order (PostgreSQL under
concurrent writers), its ``audit verify`` reports a break that is not one.
"""
from alembic import op
import sqlalchemy as sa

revision = 'core_0005'
down_revision = 'core_0004'
branch_labels = None
depends_on = None

UNSEALED = sa.text('sealed_seq IS NULL')


def upgrade():
    with op.batch_alter_table('core_audit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sealed_seq', sa.Integer(), nullable=True))
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=True)
    op.execute('UPDATE core_audit SET sealed_seq = id')
    with op.batch_alter_table('core_audit', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_core_audit_sealed_seq'), ['sealed_seq'])
    op.create_index('ix_core_audit_unsealed', 'core_audit', ['id'], unique=False,
                    postgresql_where=UNSEALED, sqlite_where=UNSEALED)


def downgrade():
    conn = op.get_bind()
    unsealed = conn.execute(sa.text('SELECT count(*) FROM core_audit WHERE sealed_seq IS NULL')).scalar()
    if unsealed:
        from core.errors import DovetailError  # a one-line CLI error, not a traceback

        raise DovetailError(f"core_0005 downgrade refused: {unsealed} audit entries are not sealed "
                            f"yet; run 'dovetail audit seal' first")
    op.drop_index('ix_core_audit_unsealed', table_name='core_audit')
    with op.batch_alter_table('core_audit', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_core_audit_sealed_seq'), type_='unique')
        batch_op.drop_column('sealed_seq')
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
