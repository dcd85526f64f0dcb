"""The application factory: wiring only; behaviour lives in the modules it wires."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, Server, Tag

from service.api.auth import access_control_middleware, log_access_mode, security_schemes
from service.api.body_schema import BodySchemaPlugin
from service.api.checkpoints import CheckpointController, signing_keys
from service.api.decisions import DecisionController
from service.api.docs_ui import docs_render_plugins, docs_router, docs_static_router
from service.api.exports import ExportController
from service.api.health import healthz, readyz
from service.api.problems import problem_details_plugin, unexpected_error_handler
from service.api.recommendations import DECISIONS_STATE_KEY, RecommendationController
from service.api.report_ui import report_ui_router, report_ui_templates
from service.api.rulesets import RulesetController
from service.api.whatif import WhatIfController
from service.db.connection import create_engine
from service.engine.memo import RecommendationMemo
from service.observability.plugin import ObservabilityPlugin
from service.services.activation import Activator
from service.services.audit import AuditReader, AuditWriter
from service.services.decisions import DecisionService
from service.services.impact_runner import ImpactRunner
from service.services.registry import RulesetRegistry
from service.services.replay import Replayer
from service.services.startup import Startup
from service.settings import Settings, get_settings

__all__ = ["API_VERSION", "create_app", "openapi_config"]

API_VERSION = "1.3.0"  # CHANGELOG.md: the contract changes of each version
logger = logging.getLogger("service")


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="advisor",
        version=API_VERSION,
        description=(
            "Rule-based advice for ML inference infrastructure on SageMaker: instance family and type, "
            "instance count, scaling method with exact AWS payloads, and a multi-AZ plan. Every part of an "
            "answer names the rule that decided it; every decision is audited. Errors are RFC 9457 problem details "
            "whose `code` is kebab-case (`invalid-request`, `model-does-not-fit`); the `code` of a warning in an "
            "answer is snake_case (`untested_instance_type`)."
        ),
        path="/docs",
        render_plugins=docs_render_plugins(),
        openapi_router=docs_router("/docs"),
        servers=[Server(url="/")],
        tags=[
            Tag(name="recommendations", description="Ask for a recommendation."),
            Tag(name="audit", description="Audited decisions."),
            Tag(name="rulesets", description="Rulesets that have answered."),
        ],
        components=Components(security_schemes=security_schemes()),
        use_handler_docstrings=False,
    )


def _lifespan(
    settings: Settings, startup: Startup, writer: AuditWriter, dispose: Callable[[], Awaitable[None]]
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The worker's lifetime: bring it into service and start the audit writer; on the way out, commit every queued
    decision, stop following activations, then close the database pool (``dispose``)."""

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        # Rules on disk that do not validate refuse the start: they must never serve. The database may not answer
        # yet: the worker then serves unready (/readyz and decisions 503) and comes into service once it does, then
        # follows activations (service.services.startup).
        startup.prepare()
        await startup.attempt()
        bringup = asyncio.create_task(startup.run(), name="startup-and-ruleset-poller")
        await writer.start()
        # Everything built so far (routes, OpenAPI schema, rulesets, pools) lives as long as the process: moved out
        # of the collector's reach, full collections stop re-walking it under load (measured: p99 halved).
        gc.freeze()
        thresholds = gc.get_threshold()
        if settings.gc_gen0_threshold:
            gc.set_threshold(settings.gc_gen0_threshold, *thresholds[1:])
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            await writer.stop()  # graceful: commits every queued decision before the engine goes
            bringup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bringup
            await dispose()

    return lifespan


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    engine = create_engine(settings)
    registry = RulesetRegistry(engine, retry_after_s=settings.db_retry_after_s)
    reader = AuditReader(engine, retry_after_s=settings.db_retry_after_s)
    writer = AuditWriter.from_settings(engine, settings)  # group commit: one flusher per worker process
    decisions = DecisionService(registry, writer, RecommendationMemo(maxsize=settings.memo_entries))
    replayer = Replayer(reader, registry)
    impact = ImpactRunner(  # the registry: stored rulesets of decisions an older engine made
        engine, registry, concurrency=settings.impact_concurrency, deadline_s=settings.impact_deadline_s
    )
    activator = Activator(engine, registry, poll_interval_s=settings.ruleset_poll_interval_s)
    startup = Startup(
        activator,
        database_url=settings.database_url,
        migrations_dir=settings.migrations_dir,
        migrate=settings.should_migrate_on_start,
        rules_dir=settings.rules_dir if settings.activate_on_start else None,
        activated_by=f"startup:{socket.gethostname()}",
    )

    lifespan = _lifespan(settings, startup, writer, engine.dispose)
    checkpoint_keys = signing_keys(writer.checkpoints.signer)  # GET /v1/audit/checkpoints lists them

    return Litestar(
        route_handlers=[
            RecommendationController,
            DecisionController,
            CheckpointController,
            ExportController,
            WhatIfController,
            RulesetController,
            healthz,
            readyz,
            docs_static_router(),
            report_ui_router(settings),  # the HTML pages: /, /decisions/{id}, sign-in (not in the schema)
        ],
        dependencies={
            "registry": Provide(lambda: registry, sync_to_thread=False),
            "reader": Provide(lambda: reader, sync_to_thread=False),
            "replayer": Provide(lambda: replayer, sync_to_thread=False),
            "activator": Provide(lambda: activator, sync_to_thread=False),
            "rules_dir": Provide(lambda: settings.rules_dir, sync_to_thread=False),
            "impact": Provide(lambda: impact, sync_to_thread=False),
            "startup": Provide(lambda: startup, sync_to_thread=False),
            "checkpoint_keys": Provide(lambda: checkpoint_keys, sync_to_thread=False),
        },
        # The decision service is read from the state by POST /v1/recommendations, the hot path, instead of being
        # injected: Litestar's dependency resolution cost about 3 % of that route's CPU time.
        state=State({DECISIONS_STATE_KEY: decisions}),
        lifespan=[lifespan],
        # Authentication before the rate limit: requests are counted per caller.
        middleware=access_control_middleware(settings),
        on_startup=[log_access_mode(settings)],
        plugins=[
            problem_details_plugin(),
            BodySchemaPlugin(),  # request bodies documented as msgspec checks them
            # /metrics, the per-request metrics, access log and server span, logging and tracing set-up
            ObservabilityPlugin(settings, engine=engine, writer=writer, registry=registry),
        ],
        exception_handlers={Exception: unexpected_error_handler},
        openapi_config=openapi_config(),
        template_config=report_ui_templates(),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
