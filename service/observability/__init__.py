"""Metrics, structured logs and traces.

``metrics`` (prometheus-client), ``logging`` (structlog over the standard library) and ``tracing`` (OpenTelemetry
API, SDK only when ``OTEL_*`` asks for it) import nothing of the service, so every layer above the engine may call
them; ``plugin`` wires them into the Litestar application (``/metrics``, the request observer, logging, tracing).
"""
