"""A consumer process that SIGKILLs itself right after the DB commit of one chosen event.

Run by test_consumer.py: the kill lands between the handler's transaction and the offset commit.
"""

import asyncio
import contextlib
import os
import signal

from contracts.cloudevents import CloudEvent
from services.common.bus import ConsumerRunner, create_producer
from services.common.db import create_engine, session_factory
from tests.support import SESSION_TIMEOUT_MS, record_effect


async def main() -> None:
    env = os.environ
    engine = create_engine(env["CHILD_DB_URL"], search_path=env.get("CHILD_DB_SCHEMA") or None)
    producer = create_producer(env["CHILD_BOOTSTRAP"])
    await producer.start()

    async def die_after_commit(event: CloudEvent) -> None:
        if event.id == env["CHILD_KILL_AFTER"]:
            os.kill(os.getpid(), signal.SIGKILL)

    runner = ConsumerRunner(
        name=env["CHILD_GROUP"],
        topics=[env["CHILD_TOPIC"]],
        handler=record_effect,
        sessions=session_factory(engine),
        bootstrap=env["CHILD_BOOTSTRAP"],
        producer=producer,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        after_apply=die_after_commit,
        batch_size=int(env.get("CHILD_BATCH_SIZE", "1")),
    )
    await runner.start()
    # Serve until the kill; give up after two minutes if it never comes.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), timeout=120)


if __name__ == "__main__":
    asyncio.run(main())
