"""Every setting of the service, from ``ADVISOR_*`` environment variables, in one typed object."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AccessScope", "ApiKey", "Settings", "get_settings", "shipped_dir"]

SQLITE_DEFAULT_URL = "sqlite+aiosqlite:///./advisor.db"


def shipped_dir(name: str) -> Path:
    """The package's own copy of the top-level ``name/`` directory (``migrations`` or ``rules``).

    A wheel carries it inside the package, at ``service/_data/<name>`` (pyproject.toml: ``force-include``); a
    checkout (an editable install, the tests) has no such copy and uses the top-level directory itself. Either
    way the result does not depend on the working directory.
    """
    packaged = resources.files("service").joinpath("_data", name)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


# access control
# What a key may do: `decide` (POST /v1/recommendations), `audit:read` (GET /v1/decisions*, GET /v1/rulesets*,
# POST /v1/decisions/{id}/replay, the what-if, GET /v1/audit/checkpoints), `admin` (POST /v1/rulesets/reload and
# /v1/rulesets/impact). No scope implies another: a key holds exactly the scopes listed for it.
AccessScope = Literal["decide", "audit:read", "admin"]


class ApiKey(BaseModel):
    """One API key as configured: its name, the sha256 of the key (never the key itself), its scopes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Caller name, audited as key:<name>.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex sha256 of the key's UTF-8 bytes.")
    scopes: tuple[AccessScope, ...] = Field(min_length=1, description="What the key may do.")


class Settings(BaseSettings):
    """Service settings. Each field is read from ``ADVISOR_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ADVISOR_", extra="ignore", frozen=True)

    database_url: str = Field(
        default=SQLITE_DEFAULT_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path.db (embedded) or "
        "postgresql+asyncpg://user@host:5432/db (production).",
    )
    database_service_role: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="Postgres: the role the service connects as. `advisor db upgrade`, run as the role that owns the "
        "tables, grants it what the running service needs and nothing more (append decisions, move the chain head, "
        "store rulesets and activations, delete expired idempotency keys; never UPDATE, DELETE or TRUNCATE "
        "decisions), after every upgrade. It must exist, and be neither the owner, a member of it, nor a superuser. "
        "Unset: no grants (the service then needs the owner's URL, and the owner can lift the append-only triggers).",
    )
    migrate_on_start: bool | None = Field(
        default=None,
        description="Apply missing migrations once the database answers (each worker, under the migration lock). "
        "Default: yes for SQLite, no for Postgres (run `advisor db upgrade` as a deploy step instead).",
    )
    rules_dir: Path = Field(
        default_factory=lambda: shipped_dir("rules"),
        description="Ruleset directory activated at start-up, and the rule commands' default. Default: the ruleset "
        "shipped in the package (in a checkout, its top-level `rules/`), whatever the working directory.",
    )
    migrations_dir: Path = Field(
        default_factory=lambda: shipped_dir("migrations"),
        description="Alembic migrations directory. Default: the migrations shipped in the package (in a checkout, "
        "its top-level `migrations/`).",
    )
    host: str = Field(default="127.0.0.1", description="Address `advisor serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `advisor serve` binds to.")
    max_body_bytes: int = Field(default=65_536, ge=1024, le=16_777_216, description="Request body limit; 413 above.")
    db_pool_size: int = Field(
        default=10,
        ge=2,
        le=200,
        description="Postgres connection pool size per worker; one of them is kept by the audit writer.",
    )
    db_pool_timeout_s: float = Field(default=5.0, gt=0, le=120, description="Wait for a pooled connection, s.")
    db_connect_timeout_s: float = Field(default=5.0, gt=0, le=120, description="Connect timeout, s.")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="Log level.")

    # ruleset activation
    activate_on_start: bool = Field(
        default=True,
        description="Activate the ruleset in rules_dir when a worker starts (if it differs from the active one); "
        "otherwise adopt the newest activation in the database.",
    )
    ruleset_poll_interval_s: float = Field(
        default=1.0, gt=0, le=300, description="How often each worker checks for a newly activated ruleset, s."
    )

    # engine
    memo_entries: int = Field(
        default=1024,
        ge=0,
        le=1_000_000,
        description="Encoded recommendations kept per worker for profiles asked again (least recently used go "
        "first; about 8 KiB each). Every request is still audited. 0: evaluate every request.",
    )

    # worker process
    gc_gen0_threshold: int = Field(
        default=20_000,
        ge=0,
        le=10_000_000,
        description="Allocations (less deallocations) between the garbage collector's youngest-generation passes in "
        "a worker, set for the process while the app serves (CPython 3.11's default: 700). A request allocates many "
        "short-lived objects; fewer passes measured about 10 % more requests/s under load. 0: leave it as it is.",
    )

    # audit writer
    audit_batch_max_rows: int = Field(
        default=256, ge=1, le=10_000, description="Group commit: most decisions committed in one transaction."
    )
    audit_batch_max_wait_ms: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="Group commit: longest a decision waits for others to share its transaction, ms (0: commit "
        "whatever is queued as soon as the writer is free; the rows that queue while a commit is in flight form "
        "the next batch).",
    )
    audit_anchor_every_rows: int = Field(
        default=1000,
        ge=1,
        le=10_000_000,
        description="Log the audit chain head (event `chain head`: seq, row_hash, time) once this many decisions were "
        "committed since the last such line, per worker; `advisor audit verify --anchors-from LOG` checks them.",
    )
    audit_anchor_every_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="Log the audit chain head at the latest this many seconds after it moved (and when the worker "
        "stops). Decisions after the newest logged head are not covered by an anchor.",
    )
    audit_max_chains: int = Field(
        default=128,
        ge=1,
        le=32_767,
        description="Postgres: how many hash chains writers may claim, one each while they run (every worker of every "
        "replica is a writer; a writer that finds them all held shares one, correctly but queueing). Chains are "
        "reused, so this is the most writers at once, not a total.",
    )
    audit_checkpoint_every_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="Record a checkpoint binding every audit chain's head (table audit_checkpoints, event `audit "
        "checkpoint` in the log) when none was recorded for this long, s; each worker also records one as it stops.",
    )
    audit_dictionary_samples: int = Field(
        default=256,
        ge=0,
        le=10_000,
        description="Answers a writer collects to train the zstd dictionary the stored answers are compressed with, "
        "when the database has none yet; 0: plain zstd, no dictionary.",
    )
    audit_partition_months_ahead: int = Field(
        default=12,
        ge=1,
        le=120,
        description="Postgres: monthly partitions `advisor db upgrade` and `advisor audit archive` keep ready "
        "beyond the current month.",
    )
    audit_archive_keep_months: int = Field(
        default=12,
        ge=1,
        le=1200,
        description="`advisor audit archive` without --before archives the months older than this many (the "
        "current month counts as one).",
    )
    audit_checkpoint_every_rows: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Also record a checkpoint once a worker committed this many decisions since its last one. Unset: "
        "by time only (audit_checkpoint_every_s).",
    )
    audit_checkpoint_signing_key_file: Path | None = Field(
        default=None,
        description="PEM file of the Ed25519 private key that signs each checkpoint (`openssl genpkey -algorithm "
        "ed25519`); read once at start-up, never logged (only this path is a setting). Unset: checkpoints are "
        "stored unsigned and nothing is published.",
    )
    audit_checkpoint_witness: str | None = Field(
        default=None,
        max_length=1024,
        description="Where signed checkpoints are copied, out of the service's reach: `s3://bucket/prefix` (a bucket "
        "with Object Lock enabled; one object per checkpoint, retention mode COMPLIANCE) or a file path (one JSON "
        "line appended per checkpoint; keep it on append-only storage, e.g. `chattr +a`). Needs the signing key. "
        "`advisor audit verify --checkpoints` reads it.",
    )
    audit_checkpoint_witness_retain_days: int = Field(
        default=365 * 7,
        ge=1,
        le=36_500,
        description="S3 witness: each checkpoint object is locked (COMPLIANCE) for this many days from its upload.",
    )
    idempotency_ttl_s: int = Field(
        default=86_400, ge=1, le=30 * 86_400, description="How long an Idempotency-Key is remembered, s."
    )
    idempotency_purge_interval_s: float = Field(
        default=60.0, gt=0, le=86_400, description="How often expired idempotency keys are deleted, s."
    )
    idempotency_purge_batch: int = Field(
        default=1000, ge=1, le=100_000, description="Expired idempotency keys deleted per statement."
    )
    db_command_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="Postgres: longest one statement may take before it fails, s."
    )
    db_retry_after_s: int = Field(
        default=2, ge=1, le=3600, description="Retry-After of the 503 answered while the database is unreachable, s."
    )

    # access control
    api_keys: tuple[ApiKey, ...] = Field(
        default=(),
        description='API keys as JSON: [{"name": "ci", "sha256": "<hex>", "scopes": ["decide"]}] (make one with '
        "`advisor keys new`). None: local mode, every request allowed, and `advisor serve` binds loopback only.",
    )
    rate_limit_per_minute: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description="Requests per minute each API key may make to /v1/ (requests without a valid key: per client "
        "address); 429 with Retry-After above. Counted per worker process. 0: no limit. Local mode has none.",
    )

    # impact analysis over HTTP (POST /v1/rulesets/impact; `advisor rules impact` has no such bounds)
    impact_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Impact runs one worker process runs at once, each holding one pooled connection; 503 "
        "`impact-busy` beyond. Keep it below `db_pool_size`.",
    )
    impact_deadline_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Longest an impact run over HTTP may take, s; 503 `impact-deadline-exceeded` after it.",
    )

    # observability
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="Log lines: `json` (one JSON object a line), `console` (human-readable), or `auto`: console when "
        "stderr is a terminal, JSON otherwise.",
    )

    # HTML pages (sign-in sessions)
    session_secret: SecretStr | None = Field(
        default=None,
        description="Secret that encrypts and signs the HTML pages' session and CSRF cookies; the same on every "
        "worker and replica. Unset: a random one per worker process, so a session lasts as long as its worker.",
    )
    session_cookie_secure: bool = Field(
        default=True,
        description="Send the HTML pages' session and CSRF cookies only over HTTPS (not in local mode, which serves "
        "plain HTTP on loopback). Off only to sign in over plain HTTP, e.g. in a test.",
    )

    @model_validator(mode="after")
    def _witness_needs_a_key(self) -> Settings:
        if self.audit_checkpoint_witness is not None and self.audit_checkpoint_signing_key_file is None:
            raise ValueError(
                "audit_checkpoint_witness needs audit_checkpoint_signing_key_file: only signed checkpoints are "
                "published"
            )
        return self

    @field_validator("api_keys")
    @classmethod
    def _distinct_keys(cls, keys: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
        for attr in ("name", "sha256"):
            seen = [getattr(k, attr) for k in keys]
            if len(set(seen)) != len(seen):
                raise ValueError(f"two API keys have the same {attr}")
        return keys

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_migrate_on_start(self) -> bool:
        return self.is_sqlite if self.migrate_on_start is None else self.migrate_on_start


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
