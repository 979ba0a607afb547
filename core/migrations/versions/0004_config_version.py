"""config versions: the run-time config applied by 'dovetail config apply'

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-12-02 03:00:00

One row per applied version of roles.yaml, workflows/*.yaml, custom_fields.yaml and the
run-time part of dovetail.yaml, with the applied text of every file, so every worker
process loads exactly what was applied.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'core_0004'
down_revision = 'core_0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('core_config_version',
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('applied_at', sa.DateTime(), nullable=False),
    sa.Column('applied_by', sa.String(length=150), nullable=True),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('documents', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_config_version'))
    )
    with op.batch_alter_table('core_config_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_config_version_version'), ['version'], unique=True)


def downgrade():
    with op.batch_alter_table('core_config_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_config_version_version'))
    op.drop_table('core_config_version')
