"""Helpers of the observability tests: scrape and read /metrics, capture the JSON log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any

from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from service.observability.logging import formatter

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
def json_log_lines(level: int = logging.INFO) -> Iterator[list[dict[str, Any]]]:
    """Every log record of the process, as the JSON the service prints, parsed (filled in when the block ends)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())
