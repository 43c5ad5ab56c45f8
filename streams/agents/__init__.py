"""Faust agents: thin wiring from Kafka topics to the ``Pipeline`` (and through it to the
analytics core and the sinks)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import faust

from sinks.backends import Backend
from streams.agents.deliveries import settle_before_waiting, shorten_fetch_wait, take_over_gaps
from streams.agents.pipeline import Pipeline
from streams.config import Settings
from streams.logs import dump_tasks_on_sigusr1

log = logging.getLogger(__name__)
LOOP_TICK_SECONDS = 0.1  # the loop-lag timer's beat


def consumer_state(app: faust.App) -> str:
    """What Faust's consumer fetches and holds back (for a worker that looks stuck)."""
    c: Any = app.consumer
    return (
        f"assigned {sorted(c.assignment())} active {sorted(c._active_partitions or ())} "
        f"paused {sorted(c._paused_partitions)} buffered {sorted(c._buffered_partitions)} "
        f"flow_active {c.flow_active} flow_control {app.flow_control.is_active()} "
        f"in_recovery {app.in_recovery}"
    )


def install(
    app: faust.App, settings: Settings, backend: Backend, crash: Callable[[str], None]
) -> Pipeline:
    """Agents for the interactions, by-actor and snapshots topics, the broadcast reader (every
    snapshot, see ``broadcast``), the checkpoint timer and the rebalance hook, all
    sharing one ``Pipeline``. Crash-only: when any of them fails, ``crash`` is told why and
    the pipeline stops taking input and saving state (a batch that failed half-way may have
    left an engine half-updated); nothing past the last checkpoint was acknowledged, so the
    next start resumes from there."""
    pipeline = Pipeline(app, settings, backend)
    take_over_gaps(app.consumer)
    shorten_fetch_wait(app.consumer, settings.worker.fetch_wait_ms)
    settle_before_waiting(app.consumer, pipeline.settle)
    take, within = settings.worker.take_messages, settings.worker.take_seconds

    def raw_topic(name: str) -> Any:
        return app.topic(settings.topic(name), key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")  # fmt: skip

    async def crash_only(what: str, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:
            pipeline.failed = f"{what} failed: {type(exc).__name__}: {exc}"
            log.critical("%s", pipeline.failed, exc_info=exc)
            crash(pipeline.failed)
            raise

    async def consume(
        stream: faust.StreamT,
        topic: str,
        handle: Callable[[Sequence[faust.types.EventT]], Awaitable[None]],
    ) -> None:
        pipeline.streams[settings.topic(topic)] = stream

        async def take_all() -> None:
            # noack_take: acks are the pipeline's to give (take would ack even when a store fails)
            async for events in cast(faust.Stream, stream).noack_take(take, within):
                await handle(events)

        await crash_only(f"the agent reading {topic}", take_all())

    @app.agent(raw_topic("interactions"), name="interactions")
    async def interactions(stream: faust.StreamT) -> None:
        await consume(stream, "interactions", pipeline.interactions)

    @app.agent(raw_topic("by-actor"), name="actors")
    async def actors(stream: faust.StreamT) -> None:
        await consume(stream, "by-actor", pipeline.actors)

    @app.agent(raw_topic("snapshots"), name="snapshots")
    async def snapshots(stream: faust.StreamT) -> None:
        await consume(stream, "snapshots", pipeline.snapshots)

    @app.task
    async def read_broadcast() -> None:
        dump_tasks_on_sigusr1(lambda: consumer_state(app))
        try:
            await crash_only("the snapshot broadcast", pipeline.broadcast.run())
        finally:
            await pipeline.close()

    @app.task
    async def watch_the_loop() -> None:
        """``rapport_loop_lag_seconds``: how late a short timer runs is how long the loop was
        held by one piece of work (what makes a live alert wait)."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(LOOP_TICK_SECONDS)
            pipeline.metrics.loop_lag.observe(time.monotonic() - started - LOOP_TICK_SECONDS)

    saving: list[asyncio.Future[None]] = []

    @app.timer(settings.worker.batch_seconds)
    async def checkpoint_when_due() -> None:
        # a checkpoint can outlast the tick (the child pickles large states): one at a time,
        # in the background, so that the timer keeps its beat
        if not saving or saving[0].done():
            task = asyncio.ensure_future(crash_only("a checkpoint", pipeline.maybe_checkpoint()))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # crash_only told
            saving[:] = [task]
        await pipeline.rewind_stalled()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        pipeline.revoked(revoked)

    return pipeline
