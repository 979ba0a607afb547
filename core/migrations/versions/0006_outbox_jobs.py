"""outbox and job schedule: core_outbox, core_job_run

Revision ID: core_0006
Revises: core_0005
Create Date: 2026-12-02 11:00:00

``core_outbox``: work written in the business transaction and done after it commits (at least
once, retried with backoff). ``core_job_run``: when each scheduled job last started, so several
workers share one schedule and a restart forgets nothing.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'core_0006'
down_revision = 'core_0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('core_outbox',
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('available_at', sa.DateTime(), nullable=False),
    sa.Column('processed_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_core_outbox'))
    )
    op.create_index('ix_core_outbox_due', 'core_outbox', ['status', 'available_at'], unique=False)
    op.create_table('core_job_run',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('last_run_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_core_job_run'))
    )


def downgrade():
    op.drop_table('core_job_run')
    op.drop_index('ix_core_outbox_due', table_name='core_outbox')
    op.drop_table('core_outbox')
