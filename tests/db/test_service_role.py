"""Least privilege (security review, finding 2): migrations run as the owner; the service runs as a role that
`advisor db upgrade` grants only what the running service needs. Postgres only: SQLite has no roles."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner
from dbutil import admin_url, blank_postgres_database, connect
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE
from sqlalchemy.engine import make_url

from service.app import create_app
from service.cli import main
from service.db import create_engine
from service.db.grants import SERVICE_ROLE_PRIVILEGES
from service.db.migrate import upgrade
from service.db.tables import metadata
from service.services.audit import verify_chain
from service.settings import Settings, get_settings

pytestmark = pytest.mark.postgres

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
# What the running service needs of each table, and nothing more.
EXPECTED = {
    "decisions": {"SELECT", "INSERT"},
    "audit_chain_head": {"SELECT", "INSERT", "UPDATE"},
    "audit_checkpoints": {"SELECT", "INSERT"},
    "idempotency_keys": {"SELECT", "INSERT", "DELETE"},
    "rulesets": {"SELECT", "INSERT"},
    "ruleset_activations": {"SELECT", "INSERT"},
    "audit_documents": {"SELECT", "INSERT"},
    "audit_dictionaries": {"SELECT", "INSERT"},
    "audit_archives": {"SELECT"},
    "alembic_version": {"SELECT"},
}


async def _create_role(prefix: str, *options: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await connect(admin_url())
    try:
        await admin.execute(f'CREATE ROLE "{name}" LOGIN {" ".join(options)}')
    finally:
        await admin.close()
    return name


async def _drop_role(name: str) -> None:
    admin = await connect(admin_url())
    try:
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        await admin.close()


@pytest.fixture
async def service_role() -> AsyncIterator[str]:
    """A uniquely named login role (roles are cluster-wide), dropped after the test's database (which holds its
    grants) is: ``database`` depends on it, so it is torn down first."""
    name = await _create_role("advisor_svc_t")
    try:
        yield name
    finally:
        await _drop_role(name)


@pytest.fixture
async def database(service_role: str) -> AsyncIterator[str]:
    """An empty Postgres database, created by the admin (the owner of everything the migrations create)."""
    async with blank_postgres_database() as url:
        yield url


def _as(url: str, role: str) -> str:
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


async def _privileges(conn: asyncpg.Connection, role: str) -> dict[str, set[str]]:
    # The month partitions are reached through their parents (and hold no privileges of their own).
    tables = [
        r[0]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        )
    ]
    return {
        table: {p for p in PRIVILEGES if await conn.fetchval("SELECT has_table_privilege($1, $2, $3)", role, table, p)}
        for table in tables
    }


def test_every_table_has_a_decision_about_the_service_role() -> None:
    """A new table must be named in SERVICE_ROLE_PRIVILEGES (even with no privileges), so nobody forgets it."""
    assert set(SERVICE_ROLE_PRIVILEGES) == set(metadata.tables) | {"alembic_version"}
    assert {t: set(p) for t, p in SERVICE_ROLE_PRIVILEGES.items()} == EXPECTED


async def test_the_service_decides_as_its_role_and_cannot_rewrite_the_audit(database: str, service_role: str) -> None:
    await upgrade(database, service_role=service_role)
    service_url = _as(database, service_role)

    # The real app, connected as the service role: start-up (migrations checked, ruleset stored and activated), a
    # decision with an idempotency key (the locked path) and one without (Postgres' one-statement path), reads.
    app = create_app(Settings(database_url=service_url, rules_dir=RULES_DIR, api_keys=(), migrate_on_start=False))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        keyed = await client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers={"Idempotency-Key": "k-1"})
        assert keyed.status_code == 201, keyed.text
        for _ in range(3):
            plain = await client.post("/v1/recommendations", json=WORKED_EXAMPLE)
            assert plain.status_code == 201, plain.text
        record = await client.get(f"/v1/decisions/{plain.json()['decision_id']}")
        assert record.status_code == 200 and record.json()["caller"].startswith("local@")
    engine = create_engine(Settings(database_url=service_url))
    try:
        report = await verify_chain(engine)  # the service role can also verify
    finally:
        await engine.dispose()
    assert report.ok and report.decisions == 4, str(report)

    conn = await connect(service_url)
    try:
        assert await _privileges(conn, service_role) == EXPECTED
        for refused in (
            "UPDATE decisions SET caller = 'mallory'",
            "DELETE FROM decisions",
            "TRUNCATE decisions",
            "DELETE FROM audit_chain_head",
            "UPDATE audit_checkpoints SET heads = '[]'",
            "DELETE FROM audit_checkpoints",
            "UPDATE rulesets SET files = '{}'",
            "DELETE FROM ruleset_activations",
            "CREATE TABLE evil (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await conn.execute(refused)
        for owner_only in (
            "ALTER TABLE decisions DISABLE TRIGGER decisions_no_update_delete",
            "ALTER TABLE decisions DISABLE TRIGGER ALL",
            "DROP TABLE decisions",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="must be owner"):
                await conn.execute(owner_only)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="session_replication_role"):
            await conn.execute("SET session_replication_role = replica")
        owners = {r[0] for r in await conn.fetch("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        assert service_role not in owners
        # Moving the chain head is allowed (that is how decisions are appended) and was done above.
        assert await conn.fetchval("SELECT sum(seq) FROM audit_chain_head") == 4
    finally:
        await conn.close()


async def test_every_upgrade_applies_the_grants_again(database: str, service_role: str) -> None:
    await upgrade(database, service_role=service_role)
    owner = await connect(database)
    try:
        await owner.execute(f'REVOKE ALL ON decisions FROM "{service_role}"')  # lost, or a table newly created
        await owner.execute(f'GRANT UPDATE, DELETE ON decisions TO "{service_role}"')  # too much
        await upgrade(database, service_role=service_role)  # no migration to run: the grants all the same
        assert await _privileges(owner, service_role) == EXPECTED
        await upgrade(database, service_role=service_role)  # idempotent
        assert await _privileges(owner, service_role) == EXPECTED
    finally:
        await owner.close()


async def test_the_cli_grants_to_the_role_its_setting_names(database: str, service_role: str) -> None:
    env = {"ADVISOR_DATABASE_URL": database, "ADVISOR_DATABASE_SERVICE_ROLE": service_role}
    get_settings.cache_clear()
    try:  # in a thread: the command runs its own event loop
        result = await asyncio.to_thread(CliRunner().invoke, main, ["db", "upgrade"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"granted the service role {service_role}" in result.output
    owner = await connect(database)
    try:
        assert await _privileges(owner, service_role) == EXPECTED
    finally:
        await owner.close()


async def test_upgrade_refuses_a_service_role_that_could_undo_the_protection(database: str) -> None:
    missing = f"advisor_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(ValueError, match=f"role {missing} does not exist"):
        await upgrade(database, service_role=missing)
    owner = make_url(database).username
    assert owner is not None
    with pytest.raises(ValueError, match="owns the tables"):
        await upgrade(database, service_role=owner)
    superuser = await _create_role("advisor_su_t", "SUPERUSER")
    member = await _create_role("advisor_member_t", f'IN ROLE "{owner}"')
    try:
        with pytest.raises(ValueError, match="superuser"):
            await upgrade(database, service_role=superuser)
        with pytest.raises(ValueError, match="member of"):
            await upgrade(database, service_role=member)
    finally:
        await _drop_role(superuser)
        await _drop_role(member)


async def test_sqlite_has_no_roles(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Postgres"):
        await upgrade(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", service_role="advisor_service")
