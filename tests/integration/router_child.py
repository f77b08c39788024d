"""A router instance in a process of its own, so a test can SIGKILL it mid-stream.

Run by test_router.py with the database, broker and data directory in the environment; serves
(consumes and relays; no HTTP) until killed, or for three minutes.
"""

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from services.common.db import create_engine
from services.router.app import create_app
from services.router.settings import RouterSettings


async def main() -> None:
    env = os.environ
    settings = RouterSettings(data_dir=Path(env["CHILD_DATA_DIR"]))
    engine = create_engine(env["CHILD_DB_URL"], search_path=env.get("CHILD_DB_SCHEMA") or None)
    app = create_app(settings, bootstrap=env["CHILD_BOOTSTRAP"], engine=engine)
    async with app.router.lifespan_context(app):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), timeout=180)
    sys.exit(0)


if __name__ == "__main__":
    asyncio.run(main())
