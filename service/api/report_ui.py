"""The HTML pages: ``GET /`` (a form to ask), ``POST /`` (it, posted), ``GET /decisions/{id}`` (the report of an
audited decision, from its stored bytes), sign-in and sign-out. None of them is in the OpenAPI document; the JSON API
under ``/v1`` is unchanged (its ``415`` for a body that is not JSON included).

The report is built by :mod:`service.report` (pure functions of the stored decision JSON); this module only reads
the decision, its ruleset and its what-if through the services and checks who asks (:mod:`service.api.ui_access`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Router, get, post
from litestar.datastructures import ResponseHeader, State
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from service.api.auth import AUDIT_READ, DECIDE, Principal
from service.api.context import request_id_of
from service.api.decisions import DecisionId, decision_uuid
from service.api.docs_ui import page_security_headers, static_asset_url
from service.api.json_body import to_body_type
from service.api.local_mode import FORM_WITH_CSRF_TOKEN
from service.api.problems import Problem
from service.api.profile_form import form_sections, form_value, worked_example_values
from service.api.recommendations import DECISIONS_STATE_KEY
from service.api.ui_access import UiAccess
from service.contract import WorkloadProfile
from service.engine import ProfileRejected
from service.report.model import build_report
from service.report.render import environment
from service.services.audit import AuditReader
from service.services.decisions import DecisionService
from service.services.registry import RulesetRegistry
from service.services.whatif import DecisionNotFound as WhatIfNotFound
from service.services.whatif import StoredDecisionUnusable, WhatIfRunner
from service.settings import AccessScope, Settings

__all__ = ["PAGES_CSP", "report_ui_router", "report_ui_templates"]

# The pages run no script at all, style only from this origin's stylesheet (the SVG charts are markup with
# presentation attributes), post forms only here, and may not be framed; a report of an audited decision and a
# profile are not for shared caches.
PAGES_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_SECURITY_HEADERS = [*page_security_headers(PAGES_CSP), ResponseHeader(name="Cache-Control", value="no-store")]
_NO_SCHEMA: dict[str, Any] = {"include_in_schema": False}
# The pages' form posts: checked by the CSRF middleware, so local mode's JSON-only rule for POSTs lets them through.
_FORM_POST: dict[str, Any] = {**_NO_SCHEMA, "status_code": 200, "opt": {FORM_WITH_CSRF_TOKEN: True}}
NextPath = Annotated[str, QueryParameter(name="next", max_length=2000)]


def report_ui_templates() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment()))


def _page(template: str, access: UiAccess, principal: Principal | None, status: int = 200, **context: Any) -> Template:
    signed_in = principal.caller if principal is not None and not access.local_mode else None
    return Template(
        template_name=template,
        context={"css_url": static_asset_url("report/report.css"), "inline_css": "", "signed_in": signed_in, **context},
        status_code=status,
    )


def _gate(request: Request[Any, Any, Any], access: UiAccess, scope: AccessScope) -> Principal | Template | Redirect:
    """The principal allowed ``scope``; otherwise the sign-in redirect (no session) or a 403 page."""
    principal = access.principal(request)
    if principal is None:
        return Redirect(f"/sign-in?next={quote(request.url.path)}", status_code=303)
    if scope not in principal.scopes:
        return _page(
            "message.html",
            access,
            principal,
            403,
            page_title="Not allowed",
            heading="Not allowed",
            message=f"{principal.caller} does not have the scope '{scope}' this page needs.",
            sign_in=False,
            next_path="/",
        )
    return principal


def report_ui_router(settings: Settings) -> Router:
    access = UiAccess(settings)

    @get("/", **_NO_SCHEMA)
    async def ask(request: Request[Any, Any, State], example: FromQuery[str | None] = None) -> Template | Redirect:
        gate = _gate(request, access, DECIDE)
        if not isinstance(gate, Principal):
            return gate
        values = worked_example_values() if example == "worked" else {}
        return _form(access, gate, values, {}, [])

    @post("/", **_FORM_POST)
    async def submit(request: Request[Any, Any, State]) -> Template | Redirect:
        gate = _gate(request, access, DECIDE)
        if not isinstance(gate, Principal):
            return gate
        pairs = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
        return await _submit(request, access, gate, pairs)

    @get("/decisions/{decision_id:str}", **_NO_SCHEMA)
    async def report(
        request: Request[Any, Any, State],
        reader: NamedDependency[AuditReader],
        registry: NamedDependency[RulesetRegistry],
        decision_id: DecisionId,
    ) -> Template | Redirect:
        gate = _gate(request, access, AUDIT_READ)
        if not isinstance(gate, Principal):
            return gate
        return await _report(access, gate, reader, registry, decision_id)

    return Router(
        path="/",
        route_handlers=[ask, submit, report, *_sign_in_handlers(access)],
        middleware=access.middleware(),
        include_in_schema=False,
        response_headers=_SECURITY_HEADERS,
    )


def _sign_in_handlers(access: UiAccess) -> list[Any]:
    """Sign-in (a form taking an API key) and sign-out; in local mode both just go on."""

    @get("/sign-in", **_NO_SCHEMA)
    async def sign_in_page(request: Request[Any, Any, State], next_path: NextPath = "/") -> Template | Redirect:
        if access.local_mode:
            return Redirect(_local(next_path), status_code=303)
        return _page(
            "signin.html",
            access,
            access.principal(request),
            page_title="Sign in",
            next_path=_local(next_path),
            error=None,
        )

    @post("/sign-in", **_FORM_POST)
    async def sign_in(request: Request[Any, Any, State]) -> Template | Redirect:
        form = await request.form()
        target = _local(str(form.get("next") or "/"))
        if access.local_mode:
            return Redirect(target, status_code=303)
        if access.sign_in(request, str(form.get("api_key") or "")) is None:
            return _page(
                "signin.html",
                access,
                None,
                401,
                page_title="Sign in",
                next_path=target,
                error="That is not an API key this service knows.",
            )
        return Redirect(target, status_code=303)

    @post("/sign-out", **_FORM_POST)
    async def sign_out(request: Request[Any, Any, State]) -> Redirect:
        access.sign_out(request)
        return Redirect("/sign-in" if not access.local_mode else "/", status_code=303)

    return [sign_in_page, sign_in, sign_out]


def _local(path: str) -> str:
    """Only a path on this site is a place to go after signing in (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def _form(
    access: UiAccess, principal: Principal, values: dict[str, str], errors: dict[str, str], form_errors: list[str]
) -> Template:
    return _page(
        "form.html",
        access,
        principal,
        422 if errors or form_errors else 200,
        page_title="Ask for a recommendation",
        sections=form_sections(),
        values=values,
        errors=errors,
        form_errors=form_errors,
    )


def _posted_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """What was typed, by input id (repeated fields numbered in order), to fill the form again."""
    values: dict[str, str] = {}
    seen: dict[str, int] = {}
    for name, text in pairs:
        if name.startswith("traffic.peak_windows."):
            index = seen.get(name, 0)
            seen[name] = index + 1
            values[f"{name}[{index}]"] = text
        else:
            values[name] = text
    return values


async def _submit(
    request: Request[Any, Any, State], access: UiAccess, principal: Principal, pairs: list[tuple[str, str]]
) -> Template | Redirect:
    value = form_value(pairs)
    try:
        profile = to_body_type(value, WorkloadProfile)
    except Problem as exc:
        errors = list(exc.extra.get("errors", [])) if isinstance(exc.extra, dict) else []
        if not errors:
            raise
        by_key = {e["key"]: e["message"] for e in errors}
        unplaced = [f"{e['key'] or 'the profile'}: {e['message']}" for e in errors if e["key"] not in _known_keys()]
        return _form(access, principal, _posted_values(pairs), by_key, unplaced)
    decisions: DecisionService = request.app.state[DECISIONS_STATE_KEY]
    try:
        decided = await decisions.decide(
            profile,
            msgspec.json.encode(value),
            ruleset_version=None,
            caller=principal.caller,
            request_id=request_id_of(request),
        )
    except ProfileRejected as exc:
        field = {exc.field: exc.message} if exc.field in _known_keys() else {}
        return _form(access, principal, _posted_values(pairs), field, [] if field else [exc.message])
    return Redirect(f"/decisions/{decided.decision_id}", status_code=303)


def _known_keys() -> set[str]:
    return {f.error_key for s in form_sections() for f in [*s.fields, *(f for row in s.rows for f in row)]}


async def _report(
    access: UiAccess, principal: Principal, reader: AuditReader, registry: RulesetRegistry, decision_id: str
) -> Template:
    try:
        parsed = decision_uuid(decision_id)
    except Problem as exc:
        return _page(
            "message.html",
            access,
            principal,
            422,
            page_title="Invalid decision id",
            heading="Invalid decision id",
            message=str(exc.detail),
            sign_in=False,
            next_path="/",
        )
    row = await reader.decision(parsed)
    if row is None:
        return _page(
            "message.html",
            access,
            principal,
            404,
            page_title="Unknown decision",
            heading="Unknown decision",
            message=f"No decision has id {parsed}.",
            sign_in=False,
            next_path="/",
        )
    ruleset = await reader.ruleset(row.ruleset_sha256)
    what_if: list[dict[str, Any]] = []
    try:
        counterfactuals = await WhatIfRunner(reader, registry).report(parsed)
        what_if = msgspec.to_builtins(counterfactuals.what_if)
    except (WhatIfNotFound, StoredDecisionUnusable, ProfileRejected):
        what_if = []  # the report shows the plan alone (the cost chart says no what-if was computed)
    try:
        record = {
            "decision_id": str(row.id),
            "ruleset_version": row.ruleset_version,
            "ruleset_sha256": row.ruleset_sha256,
            "engine_version": row.engine_version,
            "profile": json.loads(row.profile),
            "recommendation": json.loads(row.recommendation),
        }
        built = build_report(record, ruleset_files=ruleset.files if ruleset else None, what_if=what_if)
    except (ValueError, RecursionError, OverflowError):  # a stored row this release cannot read (never answered so)
        return _page(
            "message.html",
            access,
            principal,
            409,
            page_title="Decision cannot be shown",
            heading="Decision cannot be shown",
            message=f"Decision {parsed} is stored in a form this release cannot read; GET /v1/decisions/{parsed} "
            "returns it as stored.",
            sign_in=False,
            next_path="/",
        )
    return _page("report.html", access, principal, page_title=built.title, report=built)
