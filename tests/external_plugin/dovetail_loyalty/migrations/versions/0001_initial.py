"""initial: loyalty_member

Revision ID: loyalty_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "loyalty_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "loyalty_member",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["core_user.id"],
                                name=op.f("fk_loyalty_member_created_by_id_core_user"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["owner_id"], ["core_user.id"],
                                name=op.f("fk_loyalty_member_owner_id_core_user"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_member")),
        sa.UniqueConstraint("code", name=op.f("uq_loyalty_member_code")),
    )
    op.create_index(op.f("ix_loyalty_member_owner_id"), "loyalty_member", ["owner_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_loyalty_member_owner_id"), table_name="loyalty_member")
    op.drop_table("loyalty_member")
