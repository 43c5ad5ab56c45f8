"""The pipeline's turns: one holder at a time."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Histogram

from streams.agents.turns import Turns


def turns() -> Turns:
    registry = CollectorRegistry()
    waited = Histogram("w", "", ["holder"], registry=registry)
    held = Histogram("h", "", ["holder"], registry=registry)
    return Turns(waited, held)


def test_one_holder_at_a_time() -> None:
    async def main() -> int:
        lock, inside, most = turns(), [0], [0]

        async def hold() -> None:
            async with lock("x"):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                await asyncio.sleep(0.001)
                inside[0] -= 1

        await asyncio.gather(*(hold() for _ in range(5)))
        return most[0]

    assert asyncio.run(main()) == 1
