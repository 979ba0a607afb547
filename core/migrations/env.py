"""Shared Alembic environment: the connection, version table and owned tables come
from ``core.migrate`` through ``config.attributes``."""

from alembic import context

config = context.config
connection = config.attributes["connection"]
tables = config.attributes["tables"]


def include_object(obj, name, type_, reflected, compare_to):
    if type_ == "table":
        return name in tables
    table = getattr(obj, "table", None)
    return table is None or table.name in tables


context.configure(
    connection=connection,
    target_metadata=config.attributes["metadata"],
    version_table=config.attributes["version_table"],
    include_object=include_object,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
