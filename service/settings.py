"""Every setting of the service, from ``ADVISOR_*`` environment variables, in one typed object."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]

SQLITE_DEFAULT_URL = "sqlite+aiosqlite:///./advisor.db"


class Settings(BaseSettings):
    """Service settings. Each field is read from ``ADVISOR_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ADVISOR_", extra="ignore", frozen=True)

    database_url: str = Field(
        default=SQLITE_DEFAULT_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path.db (embedded) or "
        "postgresql+asyncpg://user@host:5432/db (production).",
    )
    migrate_on_start: bool | None = Field(
        default=None,
        description="Apply migrations when `advisor serve` starts. Default: yes for SQLite, no for Postgres "
        "(run `advisor db upgrade` as a deploy step instead).",
    )
    rules_dir: Path = Field(default=Path("rules"), description="Ruleset directory activated at start-up.")
    host: str = Field(default="127.0.0.1", description="Address `advisor serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `advisor serve` binds to.")
    max_body_bytes: int = Field(default=65_536, ge=1024, le=16_777_216, description="Request body limit; 413 above.")
    db_pool_size: int = Field(default=10, ge=1, le=200, description="Postgres connection pool size per worker.")
    db_pool_timeout_s: float = Field(default=5.0, gt=0, le=120, description="Wait for a pooled connection, s.")
    db_connect_timeout_s: float = Field(default=5.0, gt=0, le=120, description="Connect timeout, s.")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="Log level.")

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
