"""user-started jobs: core_user_job

Revision ID: core_0007
Revises: core_0006
Create Date: 2026-12-02 12:40:00

``core_user_job``: an import or export a user started, with its status, progress (rows done of
the total), result summary, row-level error report and the files it reads and writes.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'core_0007'
down_revision = 'core_0006'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    op.create_table('core_user_job',
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('rows_total', sa.Integer(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('result', JSON, nullable=True),
    sa.Column('errors', JSON, nullable=True),
    sa.Column('handler', sa.String(length=200), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('input_file', sa.String(length=300), nullable=True),
    sa.Column('output_file', sa.String(length=300), nullable=True),
    sa.Column('errors_file', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['requested_by_id'], ['core_user.id'],
                            name=op.f('fk_core_user_job_requested_by_id_core_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_user_job'))
    )
    op.create_index(op.f('ix_core_user_job_requested_by_id'), 'core_user_job', ['requested_by_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_core_user_job_requested_by_id'), table_name='core_user_job')
    op.drop_table('core_user_job')
