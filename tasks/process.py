"""How docclass's own processes end, and what their own flow runs skip.

Kept apart from the tasks that use them: importing this imports neither Prefect nor MLflow.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator


def exit_without_teardown(exit_code: Callable[[], int] = lambda: 0) -> None:
    """At exit, after every exit handler registered later, ends the process with ``exit_code()``
    without tearing the interpreter down.

    Freeing every object of Prefect, MLflow, scikit-learn and a loaded model one by one takes
    a second or more after the work is done. Registered before any of Prefect's handlers, this
    one runs last: Prefect has stopped its services and sent its logs and events by then, and
    multiprocessing has flushed its queues.
    """

    def exit_now() -> None:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code())

    atexit.register(exit_now)


@contextlib.contextmanager
def without_heartbeats() -> Iterator[None]:
    """Flow runs started inside send no heartbeats. Prefect joins a run's heartbeat thread at the
    run's end, and that thread sleeps in 1 s steps: each run would end up to a second late. For
    runs whose process reports their end itself (the CLI's, a job's shards subflow)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
