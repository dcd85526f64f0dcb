"""Helpers of the observability tests: scrape and read /metrics, capture the JSON log lines."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager, redirect_stderr
from typing import Any

from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

Client = AsyncTestClient  # type: ignore[type-arg]
MakeClient = Callable[..., AbstractAsyncContextManager[Client]]
Samples = list[Sample]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, parsed by prometheus-client's parser."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


async def scrape(client: Client) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly these labels (0 if absent: a counter not incremented yet)."""
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


def matching(samples: Samples, name: str, **labels: str) -> Samples:
    """Samples named ``name`` whose labels include these."""
    return [s for s in samples if s.name == name and labels.items() <= s.labels.items()]


@contextmanager
def json_log_lines() -> Iterator[list[dict[str, Any]]]:
    """Every line the process logs on stderr while the block runs, parsed (filled in when the block ends). The
    ``make_client`` fixture's apps log JSON."""
    stream = io.StringIO()
    lines: list[dict[str, Any]] = []
    try:
        with redirect_stderr(stream):
            yield lines
    finally:
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())
