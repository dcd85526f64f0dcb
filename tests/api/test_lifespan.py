"""What a worker changes in its process while it serves, and undoes when it stops."""

from __future__ import annotations

import gc

from conftest import MakeClient


async def test_the_collector_threshold_is_set_while_serving_and_restored_after(make_client: MakeClient) -> None:
    before = gc.get_threshold()
    async with make_client(gc_gen0_threshold=12_345) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before


async def test_zero_leaves_the_collector_threshold_alone(make_client: MakeClient) -> None:
    before = gc.get_threshold()
    async with make_client(gc_gen0_threshold=0):
        assert gc.get_threshold() == before
