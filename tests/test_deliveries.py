"""The pipeline's own check of Faust's deliveries: each offset once, in order, none skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from aiokafka import AIOKafkaProducer

from streams.agents.deliveries import Delivery, DeliveryCheck, Refill, shorten_fetch_wait
from streams.app import create_app
from streams.config import load_settings

TP = ("t.interactions", 3)


def run(check: DeliveryCheck, offsets: list[int]) -> list[Delivery]:
    return [check.classify(TP, o) for o in offsets]


def test_in_order_offsets_are_taken_and_repeats_are_recognised() -> None:
    check = DeliveryCheck()
    check.start(TP, 12)
    assert run(check, [12, 13, 14, 13, 12, 15]) == [
        Delivery.NEXT, Delivery.NEXT, Delivery.NEXT, Delivery.AGAIN, Delivery.AGAIN, Delivery.NEXT,
    ]  # fmt: skip
    assert check.expected(TP) == 16


def test_a_dropped_message_is_reported_with_where_to_read_from() -> None:
    # the faust startup race that lost p3:15: 13, 14 delivered, 15 dropped, 16 delivered
    check = DeliveryCheck()
    check.start(TP, 13)
    assert run(check, [13, 14]) == [Delivery.NEXT, Delivery.NEXT]
    assert check.expected(TP) == 15  # the caller reads 15 from Kafka before taking 16
    assert check.classify(TP, 16) is Delivery.MISSING
    assert run(check, [15, 16, 17]) == [Delivery.AGAIN, Delivery.AGAIN, Delivery.NEXT]


def test_the_first_message_after_assignment_must_be_the_committed_one() -> None:
    check = DeliveryCheck()
    check.start(TP, 40)
    check.start(TP, 99)  # already tracking: a later start changes nothing
    assert check.expected(TP) == 40
    assert check.classify(TP, 41) is Delivery.MISSING


def test_without_a_commit_the_first_delivery_sets_the_pace() -> None:
    check = DeliveryCheck()
    check.start(TP, None)
    assert run(check, [7, 8]) == [Delivery.NEXT, Delivery.NEXT]


def test_forgotten_partitions_start_again_from_their_commit() -> None:
    check = DeliveryCheck()
    check.start(TP, 5)
    run(check, [5, 6])
    check.forget([TP])
    check.start(TP, 3)
    assert run(check, [3, 4]) == [Delivery.NEXT, Delivery.NEXT]


def test_refill_reads_a_range_from_kafka_across_transaction_markers(
    kafka_bootstrap: str, run_id: str, tmp_path: Path
) -> None:
    """Offsets Faust skipped are read straight from the broker; the commit markers of a
    transactional producer take offsets of their own, which are simply not there."""
    settings = load_settings(env={"RAPPORT_KAFKA": kafka_bootstrap}, cwd=tmp_path)
    topic = f"{run_id}.refill"

    async def scenario() -> tuple[list[tuple[int, bytes | None]], list[tuple[int, bytes | None]]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=run_id)
        await producer.start()
        try:
            for batch in range(3):  # each transaction: 2 records + 1 commit marker
                async with producer.transaction():
                    for i in range(2):
                        await producer.send_and_wait(topic, f"{batch}-{i}".encode(), partition=0)
        finally:
            await producer.stop()
        refill = Refill(settings)
        try:
            whole = await refill.read(topic, 0, 0, 9)
            middle = await refill.read(topic, 0, 2, 5)
        finally:
            await refill.close()
        return [(r.offset, r.value) for r in whole], [(r.offset, r.value) for r in middle]

    whole, middle = asyncio.run(scenario())
    assert whole == [(0, b"0-0"), (1, b"0-1"), (3, b"1-0"), (4, b"1-1"), (6, b"2-0"), (7, b"2-1")]
    assert middle == [(3, b"1-0"), (4, b"1-1")]


def test_the_worker_consumer_long_polls_fetch_wait_ms_not_faust_s_1500(tmp_path: Path) -> None:
    settings = load_settings(env={"RAPPORT_WORKER__FETCH_WAIT_MS": "120"}, cwd=tmp_path)

    async def created() -> int:
        app = create_app(settings)
        shorten_fetch_wait(app.consumer, settings.worker.fetch_wait_ms)
        thread: Any = cast(Any, app.consumer)._thread
        consumer = thread._create_worker_consumer(thread.transport)
        await consumer.stop()
        return int(consumer._fetch_max_wait_ms)

    assert asyncio.run(created()) == 120
