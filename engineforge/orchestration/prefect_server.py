"""`prefect server start` as engineforge runs it: on SQLite, a write transaction takes the write lock
when it begins, so it waits its turn instead of being refused.

Prefect begins its write transactions on SQLite DEFERRED. One that reads before it writes (a worker's
`PATCH /flow_runs/{id}/labels`, creating a task run or a flow run, a worker's heartbeat) must upgrade
its read to a write, and SQLite refuses that at once, without waiting out the busy timeout, while
another connection writes or has committed since the read (SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT). Prefect
answers 503; under a steady stream of writes (the logs and events of 16 flow runs) such a request can
lose every retry, and a worker then crashes the flow run it was starting. Prefect begins a few of its
transactions IMMEDIATE for this reason (`with_for_update=True`); this server begins all of them so.
Reads outside a transaction are unchanged; a PostgreSQL-backed server is left as Prefect makes it.

    python -m engineforge.orchestration.prefect_server [options of prefect server start]
"""

from __future__ import annotations

import sys


def take_write_lock_first() -> None:
    """Make this process's Prefect server begin every SQLite transaction IMMEDIATE (through Prefect's
    injection point for the database configuration); call before the server starts."""
    from prefect.server.database.configurations import AioSqliteConfiguration
    from prefect.server.database.dependencies import MODELS_DEPENDENCIES
    from prefect.server.utilities.database import get_dialect
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    class WriteLockFirst(AioSqliteConfiguration):
        def begin_transaction(self, session, with_for_update: bool = False):
            return super().begin_transaction(session, with_for_update=True)  # True: BEGIN IMMEDIATE on SQLite

    url = PREFECT_API_DATABASE_CONNECTION_URL.value()
    if get_dialect(url).name == "sqlite":
        MODELS_DEPENDENCIES["database_config"] = WriteLockFirst(connection_url=url)


def command(*options: str) -> list[str]:
    """The command line that starts such a server with `options` of `prefect server start`."""
    return [sys.executable, "-m", __name__, *options]


def main(options: list[str]) -> None:
    take_write_lock_first()
    from prefect.cli import app

    sys.argv = ["prefect", "server", "start", *options]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
