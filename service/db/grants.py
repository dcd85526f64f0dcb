"""Least privilege on Postgres: what the service role may do, granted by ``advisor db upgrade``.

The migrations run as the role that owns the tables (the owner URL); the service connects as another role
(``ADVISOR_DATABASE_SERVICE_ROLE``) that may append decisions and move the chain head, but neither change nor
delete a decision, nor lift the append-only triggers (only a table's owner or a superuser can: ``ALTER TABLE ...
DISABLE TRIGGER``, ``session_replication_role``). After every upgrade, in the migration's transaction, the service
role's table and sequence privileges in the schema are revoked and granted again from ``SERVICE_ROLE_PRIVILEGES``,
so a table a migration adds is covered, and a privilege granted by hand beyond these is taken away.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["SERVICE_ROLE_PRIVILEGES", "grant_service_role"]

# Every table of the schema, with what the running service does to it (tests/db/test_service_role.py fails when a
# table is missing here, so each new one gets a decision).
SERVICE_ROLE_PRIVILEGES: Final[dict[str, tuple[str, ...]]] = {
    "decisions": ("SELECT", "INSERT"),  # append-only: never UPDATE, DELETE or TRUNCATE
    # SELECT ... FOR UPDATE, moving the head after each batch, and the head row of a chain claimed for the first time
    "audit_chain_head": ("SELECT", "INSERT", "UPDATE"),
    "audit_checkpoints": ("SELECT", "INSERT"),  # append-only, like the decisions
    # A decision's profile and answer (append-only like it; its month's partitions, reached through the parent,
    # need no grant of their own)
    "audit_documents": ("SELECT", "INSERT"),
    "audit_dictionaries": ("SELECT", "INSERT"),  # a writer stores the dictionary it trained
    "audit_archives": ("SELECT",),  # archived months answer 410; only `advisor audit archive` (the owner) writes
    "idempotency_keys": ("SELECT", "INSERT", "DELETE"),  # expired keys are deleted (the writer's purge)
    "rulesets": ("SELECT", "INSERT"),  # a ruleset is stored when first activated
    "ruleset_activations": ("SELECT", "INSERT"),  # activation history
    "alembic_version": ("SELECT",),  # a starting worker checks the schema is at its release's migration
}


async def grant_service_role(connection: AsyncConnection, role: str) -> None:
    """Give ``role`` exactly ``SERVICE_ROLE_PRIVILEGES`` on the current schema's tables (and USAGE on its
    sequences, for identity columns), in the caller's transaction; idempotent.

    Refuses (``ValueError``) a role that does not exist, or that could lift the protection itself: the role that
    owns the tables, a member of it, or a superuser.
    """
    schema = str(await connection.scalar(text("SELECT current_schema()")))
    await _check_role(connection, role, schema)
    quote = connection.dialect.identifier_preparer.quote
    grantee, in_schema = quote(role), quote(schema)
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {in_schema} FROM {grantee}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {in_schema} FROM {grantee}",
        f"GRANT USAGE ON SCHEMA {in_schema} TO {grantee}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {in_schema} TO {grantee}",
    ]
    for table, privileges in SERVICE_ROLE_PRIVILEGES.items():
        if privileges:
            statements.append(f"GRANT {', '.join(privileges)} ON {in_schema}.{quote(table)} TO {grantee}")
    for statement in statements:
        await connection.execute(text(statement))


async def _check_role(connection: AsyncConnection, role: str, schema: str) -> None:
    found = (
        await connection.execute(
            text(
                "SELECT r.rolsuper, t.tableowner::text, pg_has_role(r.oid, t.tableowner, 'MEMBER') "
                "FROM pg_roles r, pg_tables t "
                "WHERE r.rolname = :role AND t.schemaname = :schema AND t.tablename = 'decisions'"
            ),
            {"role": role, "schema": schema},
        )
    ).first()
    if found is None:
        exists = await connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role})
        if exists is None:
            raise ValueError(
                f"the service role {role} does not exist: create it first (CREATE ROLE {role} LOGIN PASSWORD '...')"
            )
        raise ValueError(f"no decisions table in schema {schema}: the migrations did not run")  # pragma: no cover
    superuser, owner, member = found
    if role == owner:
        raise ValueError(f"the service role {role} owns the tables: the service must connect as another role")
    if superuser:
        raise ValueError(f"the service role {role} is a superuser: it could lift every protection")
    if member:
        raise ValueError(f"the service role {role} is a member of {owner}, which owns the tables")
