"""The pipeline's turns: one holder at a time, and the loop runs between one holder's turns."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Histogram

from streams.agents.turns import Turns


def turns() -> Turns:
    registry = CollectorRegistry()
    waited = Histogram("w", "", ["holder"], registry=registry)
    held = Histogram("h", "", ["holder"], registry=registry)
    return Turns(waited, held)


def test_turns_back_to_back_let_other_tasks_run_between_them() -> None:
    # a checkpoint flushes in turns until its rows are stored; an agent that is not yet waiting
    # for a turn (it awaits its next take) must get the loop between them, not after them all
    async def main() -> list[str]:
        lock, seen = turns(), []

        async def checkpoint() -> None:
            for i in range(3):
                async with lock("checkpoint flush"):
                    seen.append(f"flush {i}")

        async def agent() -> None:
            await asyncio.sleep(0)  # its take hands a batch over
            async with lock("actors"):
                seen.append("actors")

        await asyncio.gather(checkpoint(), agent())
        return seen

    seen = asyncio.run(main())
    assert seen.index("actors") < seen.index("flush 2"), seen


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
