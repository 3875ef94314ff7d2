"""Retries for the tasks that touch storage or the registry, and only those.

Validation, training and evaluation are deterministic: retrying them only delays the same
error. Storage and registry calls can meet a network hiccup, a throttled S3 API or a locked
sqlite database, so they retry with exponential backoff (2 s, 4 s, 8 s), but never on an
answer that will not change: a missing object, a denied permission, an unknown classifier.
"""

from __future__ import annotations

from prefect.tasks import exponential_backoff

from classifier_core.errors import DocclassError

# Errors that say something about the request, not about the moment.
_PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def is_transient(error: BaseException | None) -> bool:
    """Whether trying again later could succeed.

    A DocclassError is a verdict on the input (bad name, no such classifier, no input found)
    unless it wraps an OSError other than a missing path or a denied permission. Any other
    exception (connection reset, database locked, a 5xx from the API) is worth a retry.
    """
    if error is None:
        return False
    if isinstance(error, DocclassError):
        cause = error.__cause__
        return isinstance(cause, OSError) and not isinstance(cause, _PERMANENT_OS_ERRORS)
    if isinstance(error, (ValueError, TypeError, KeyError, _PERMANENT_OS_ERRORS)):
        return False
    return True


def _retry_when_transient(task, task_run, state) -> bool:
    return is_transient(state.result(raise_on_failure=False))


IO_RETRIES = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.2,
    "retry_condition_fn": _retry_when_transient,
}
