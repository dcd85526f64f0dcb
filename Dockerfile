# syntax=docker/dockerfile:1.7
# Build: docker build -t advisor .
# Run:   docker run --rm -e ADVISOR_DATABASE_URL=postgresql+asyncpg://... advisor advisor db upgrade
#        docker run --rm -p 8000:8000 -e ADVISOR_DATABASE_URL=... advisor
# Default command migrates (under an advisory lock) and then serves; in Kubernetes run the
# migration as a Job before the rollout and start pods with `advisor serve` only.
#
# The first stage builds the wheel; the image installs that wheel and nothing else: the migrations and the default
# ruleset are inside it (ADVISOR_RULES_DIR, e.g. a mounted ConfigMap, replaces the ruleset).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
COPY rules ./rules
RUN python -m pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="advisor" \
      org.opencontainers.image.description="Rule-based advice for ML inference infrastructure, every decision audited"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 65532 advisor && useradd --system --uid 65532 --gid advisor --home /app advisor
# The wheel is mounted from the build stage for the install, not copied into a layer.
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    python -m venv /opt/advisor && /opt/advisor/bin/pip install /dist/advisor-*.whl
WORKDIR /app
ENV PATH=/opt/advisor/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ADVISOR_HOST=0.0.0.0 \
    ADVISOR_PORT=8000 \
    ADVISOR_DATABASE_URL=sqlite+aiosqlite:////tmp/advisor.db
USER 65532:65532
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["sh", "-c", "advisor db upgrade && exec advisor serve"]
