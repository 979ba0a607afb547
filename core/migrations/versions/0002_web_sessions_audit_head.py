"""web sessions, audit chain head

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-12-02 09:00:00

``core_web_session``: server-side record of each signed-in browser (signing out ends it).
``core_audit_head``: the anchored end of the audit chain; filled here from the entries
already written, so an existing chain is verified against its current end.
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa

revision = 'core_0002'
down_revision = 'core_0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('core_web_session',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['core_user.id'], name=op.f('fk_core_web_session_user_id_core_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_web_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_core_web_session_token_hash'))
    )
    with op.batch_alter_table('core_web_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_web_session_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_core_web_session_user_id'), ['user_id'], unique=False)

    head = op.create_table('core_audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('last_id', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_audit_head'))
    )
    # Anchor the chain written so far (if any) at its current end.
    conn = op.get_bind()
    audit = sa.table('core_audit', sa.column('id', sa.Integer()), sa.column('hash', sa.String()))
    count, last_id = conn.execute(sa.select(sa.func.count(), sa.func.max(audit.c.id))).one()
    if count:
        last_hash = conn.execute(sa.select(audit.c.hash).where(audit.c.id == last_id)).scalar()
        op.bulk_insert(head, [{'id': 1, 'entries': count, 'last_id': last_id,
                               'last_hash': last_hash,
                               'updated_at': datetime.now(UTC).replace(tzinfo=None)}])


def downgrade():
    op.drop_table('core_audit_head')
    with op.batch_alter_table('core_web_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_web_session_user_id'))
        batch_op.drop_index(batch_op.f('ix_core_web_session_expires_at'))

    op.drop_table('core_web_session')
