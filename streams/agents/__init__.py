"""Faust agents: thin wiring from Kafka topics to the ``Pipeline`` (and through it to the
analytics core and the sinks)."""

from __future__ import annotations

from typing import Any, cast

import faust

from sinks.backends import Backend
from streams.agents.deliveries import shorten_fetch_wait, take_over_gaps
from streams.agents.pipeline import Pipeline
from streams.config import Settings
from streams.logs import dump_tasks_on_sigusr1


def consumer_state(app: faust.App) -> str:
    """What Faust's consumer fetches and holds back (for a worker that looks stuck)."""
    c: Any = app.consumer
    return (
        f"assigned {sorted(c.assignment())} active {sorted(c._active_partitions or ())} "
        f"paused {sorted(c._paused_partitions)} buffered {sorted(c._buffered_partitions)} "
        f"flow_active {c.flow_active} flow_control {app.flow_control.is_active()} "
        f"in_recovery {app.in_recovery}"
    )


def install(app: faust.App, settings: Settings, backend: Backend) -> Pipeline:
    """Agents for the interactions, by-actor and snapshots topics, the broadcast reader (every
    snapshot, see ``broadcast``), the checkpoint timer and the rebalance hook, all
    sharing one ``Pipeline``."""
    pipeline = Pipeline(app, settings, backend)
    take_over_gaps(app.consumer)
    shorten_fetch_wait(app.consumer, settings.worker.fetch_wait_ms)
    take, within = settings.worker.take_messages, settings.worker.take_seconds

    def raw_topic(name: str) -> Any:
        return app.topic(settings.topic(name), key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")  # fmt: skip

    @app.agent(raw_topic("interactions"), name="interactions")
    async def interactions(stream: faust.StreamT) -> None:
        pipeline.streams[settings.topic("interactions")] = stream
        # noack_take: acks are the pipeline's to give (take would ack even when a store fails)
        async for events in cast(faust.Stream, stream).noack_take(take, within):
            await pipeline.interactions(events)

    @app.agent(raw_topic("by-actor"), name="actors")
    async def actors(stream: faust.StreamT) -> None:
        pipeline.streams[settings.topic("by-actor")] = stream
        async for events in cast(faust.Stream, stream).noack_take(take, within):
            await pipeline.actors(events)

    @app.agent(raw_topic("snapshots"), name="snapshots")
    async def snapshots(stream: faust.StreamT) -> None:
        pipeline.streams[settings.topic("snapshots")] = stream
        async for events in cast(faust.Stream, stream).noack_take(take, within):
            await pipeline.snapshots(events)

    @app.task
    async def read_broadcast() -> None:
        dump_tasks_on_sigusr1(lambda: consumer_state(app))
        try:
            await pipeline.broadcast.run()
        finally:
            await pipeline.close()

    @app.timer(settings.worker.batch_seconds)
    async def checkpoint_when_due() -> None:
        await pipeline.maybe_checkpoint()
        await pipeline.rewind_stalled()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        pipeline.revoked(revoked)

    return pipeline
