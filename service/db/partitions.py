"""Monthly partitions of the audit store (Postgres): their names, the DDL that makes them, and which exist.

``decisions`` is partitioned by range of ``created_at`` and ``audit_documents`` by range of ``month``
(``YYYYMM``), one partition per calendar month (UTC) of each: ``decisions_y2026m12`` holds the decisions made
in December 2026 and ``audit_documents_y2026m12`` their profiles and answers. A default partition of each
catches rows of a month that has no partition yet, so a write never fails for want of one; ``advisor db
upgrade`` and ``advisor audit archive`` create the months ahead (``ADVISOR_AUDIT_PARTITION_MONTHS_AHEAD``) and
move any row the default caught into its month.

Archiving a month detaches and drops both of its partitions (``service.services.audit.archive``), which is
what keeps retention cheap: no row-by-row delete, no vacuum.

SQLite keeps one table of each; archiving deletes the month's rows there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "PARTITIONED_TABLES",
    "create_month",
    "create_month_sql",
    "ensure_months",
    "existing_months",
    "is_partition_name",
    "is_partitioned",
    "month_bounds",
    "month_range",
    "next_month",
    "parse_month",
    "partition_name",
]

PARTITIONED_TABLES = ("decisions", "audit_documents")
_PARTITION_NAME = re.compile(r"^(decisions|audit_documents)_(y\d{4}m\d{2}|default)$")
_MONTH_TEXT = re.compile(r"^(\d{4})-(\d{2})$")


def is_partition_name(name: str) -> bool:
    """Whether ``name`` is one of the partitions this module makes (the schema check leaves them out)."""
    return _PARTITION_NAME.match(name) is not None


def parse_month(value: str) -> int:
    """``YYYY-MM`` as ``YYYYMM``; ``ValueError`` otherwise."""
    match = _MONTH_TEXT.match(value.strip())
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"expected a month as YYYY-MM, got {value!r}")
    return int(match[1]) * 100 + int(match[2])


def next_month(month: int) -> int:
    year, number = divmod(month, 100)
    return (year + 1) * 100 + 1 if number == 12 else month + 1


def month_range(first: int, last: int) -> list[int]:
    """Every month from ``first`` to ``last``, both included."""
    months, month = [], first
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def month_bounds(month: int) -> tuple[datetime, datetime]:
    """The first instant of ``month`` and of the month after it, in UTC."""
    start_year, start_month = divmod(month, 100)
    end_year, end_month = divmod(next_month(month), 100)
    return datetime(start_year, start_month, 1, tzinfo=UTC), datetime(end_year, end_month, 1, tzinfo=UTC)


def partition_name(table: str, month: int) -> str:
    return f"{table}_y{month // 100:04d}m{month % 100:02d}"


def create_month_sql(month: int) -> list[str]:
    """The statements that create ``month``'s partition of each partitioned table (if it is missing)."""
    start, end = month_bounds(month)
    return [
        f"CREATE TABLE IF NOT EXISTS {partition_name('decisions', month)} PARTITION OF decisions "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')",
        f"CREATE TABLE IF NOT EXISTS {partition_name('audit_documents', month)} PARTITION OF audit_documents "
        f"FOR VALUES FROM ({month}) TO ({next_month(month)})",
        *(_refuse_truncate_sql(partition_name(table, month)) for table in PARTITIONED_TABLES),
    ]


def create_default_sql() -> list[str]:
    return [
        *(f"CREATE TABLE IF NOT EXISTS {table}_default PARTITION OF {table} DEFAULT" for table in PARTITIONED_TABLES),
        *(_refuse_truncate_sql(f"{table}_default") for table in PARTITIONED_TABLES),
    ]


def _refuse_truncate_sql(partition: str) -> str:
    """The append-only trigger against TRUNCATE on one partition (unless it has it): a partition inherits the row
    triggers of its table, but not the statement triggers, so without its own a TRUNCATE of the partition alone
    would empty the month."""
    trigger = f"{partition}_no_truncate"
    return (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_trigger "
        f"WHERE tgrelid = '{partition}'::regclass AND tgname = '{trigger}') THEN "
        f"CREATE TRIGGER {trigger} BEFORE TRUNCATE ON {partition} "
        "FOR EACH STATEMENT EXECUTE FUNCTION decisions_append_only(); END IF; END $$"
    )


async def is_partitioned(conn: AsyncConnection) -> bool:
    """Whether ``decisions`` is a partitioned table here (Postgres, migration 0009 or later)."""
    if conn.dialect.name != "postgresql":
        return False
    found = await conn.scalar(text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('decisions')"))
    return found is not None


async def existing_months(conn: AsyncConnection) -> list[int]:
    """The months that have a partition of ``decisions``, oldest first."""
    found = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'decisions' AND c.relnamespace = "
            "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        )
    )
    months = []
    for (name,) in found:
        match = re.match(r"^decisions_y(\d{4})m(\d{2})$", name)
        if match:
            months.append(int(match[1]) * 100 + int(match[2]))
    return sorted(months)


async def ensure_months(conn: AsyncConnection, *, now: datetime, ahead: int) -> list[int]:
    """Postgres: partitions for this month and ``ahead`` months after it, with any rows the default partitions
    caught for those months moved in. The months created; run by the tables' owner, in its transaction."""
    current = now.astimezone(UTC).year * 100 + now.astimezone(UTC).month
    wanted = month_range(current, _add_months(current, ahead))
    have = set(await existing_months(conn))
    created = [month for month in wanted if month not in have]
    for month in created:
        await create_month(conn, month)
    return created


async def create_month(conn: AsyncConnection, month: int) -> None:
    """A month's partitions, taking over the rows the default partitions hold for it (Postgres refuses to attach a
    range the default partition has rows of)."""
    start, end = month_bounds(month)
    caught: dict[str, tuple[str, dict[str, object]]] = {
        "decisions": ("created_at >= :start AND created_at < :end", {"start": start, "end": end}),
        "audit_documents": ("month = :month", {"month": month}),
    }
    for table, (where, params) in caught.items():
        held = await conn.scalar(text(f"SELECT count(*) FROM {table}_default WHERE {where}"), params)
        if held:
            await conn.execute(
                text(f"CREATE TEMPORARY TABLE moving_{table} ON COMMIT DROP AS TABLE {table} WITH NO DATA")
            )
            await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            await conn.execute(
                text(
                    f"WITH gone AS (DELETE FROM {table}_default WHERE {where} RETURNING *) "
                    f"INSERT INTO moving_{table} SELECT * FROM gone"
                ),
                params,
            )
    for statement in create_month_sql(month):
        await conn.execute(text(statement))
    for table in caught:
        moving = await conn.scalar(text("SELECT to_regclass(:name)"), {"name": f"moving_{table}"})
        if moving is not None:
            await conn.execute(text(f"INSERT INTO {table} SELECT * FROM moving_{table}"))
            await conn.execute(text(f"DROP TABLE moving_{table}"))
            await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


def _add_months(month: int, count: int) -> int:
    for _ in range(count):
        month = next_month(month)
    return month


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's schema comparison filter: the month partitions are made at run time, not described in tables.py."""
    return not (type_ == "table" and name is not None and is_partition_name(name))
