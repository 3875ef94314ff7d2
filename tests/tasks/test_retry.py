"""Retries: only storage and registry tasks retry, with backoff, and only on transient failures."""

from __future__ import annotations

import pytest
from prefect import flow, task
from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

import tasks.classification
import tasks.comparison
import tasks.training
from classifier_core.errors import TrainingDataError
from tasks.registry import RegistryError
from tasks.retry import IO_RETRIES, is_transient
from tasks.storage import StorageError


def _wrapped(error: Exception, cause: BaseException) -> Exception:
    try:
        raise error from cause
    except Exception as raised:  # noqa: BLE001 - returning it with its __cause__ set
        return raised


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("read timed out"), True),
        (RuntimeError("database is locked"), True),
        (_wrapped(StorageError("s3://b/k: cannot read"), ConnectionError("endpoint unreachable")), True),
        (_wrapped(StorageError("in/x: cannot read"), FileNotFoundError("no such file")), False),
        (_wrapped(StorageError("out/: cannot write"), PermissionError("denied")), False),
        (StorageError("in/: no input found: expected at least one file"), False),
        (RegistryError("classifier 'x' not found in the registry"), False),
        (TrainingDataError([]), False),
        (ValueError("bad"), False),
        (None, False),
    ],
)
def test_only_transient_failures_are_retried(error, transient):
    assert is_transient(error) is transient


def test_only_storage_and_registry_tasks_retry():
    tasks_by_name = {
        t.name: t
        for module in (tasks.training, tasks.classification, tasks.comparison)
        for t in vars(module).values()
        if hasattr(t, "retries") and hasattr(t, "fn")
    }
    retrying = {name for name, t in tasks_by_name.items() if t.retries}
    assert retrying == {
        "check-registry", "register", "package-training-output", "publish-evaluation",
        "resolve-classifier", "list-inputs", "skip-classified-inputs", "record-classified-inputs",
        "package-job-output", "publish-job-summary", "read-job-plan", "plan-shards", "remove-staging",
        # a shard reads and writes storage; a retry redoes the whole shard, and only after a
        # transient error (is_transient), never after a bad document or a stop request
        "classify-shard",
        "read-aliases", "resolve-versions", "log-comparison", "promote", "publish-comparison-table",
    }
    # deterministic work is never retried: it would only repeat the same error, later
    deterministic = {"validate-training-data", "train", "evaluate", "load-test-set", "evaluate-version"}
    assert deterministic <= set(tasks_by_name) - retrying
    assert all(tasks_by_name[name].retry_delay_seconds == [2, 4, 8] for name in retrying)


def test_a_transient_failure_is_retried_and_a_permanent_one_is_not(prefect_server):
    attempts = {"flaky": 0, "missing": 0}

    @task(**IO_RETRIES)
    def flaky() -> str:
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:
            raise ConnectionResetError("connection reset by peer")
        return "read"

    @task(**IO_RETRIES)
    def missing() -> None:
        attempts["missing"] += 1
        raise StorageError("in/x.txt: cannot read") from FileNotFoundError("in/x.txt")

    @flow
    def job() -> tuple[str, bool]:
        first = flaky()
        failed = missing(return_state=True)
        return first, failed.is_failed()

    # Logs stay local: shipped in the background, they outlived the session's server at exit.
    with temporary_settings(updates={PREFECT_API_URL: prefect_server, PREFECT_LOGGING_TO_API_ENABLED: False}):
        assert job() == ("read", True)
    assert attempts == {"flaky": 2, "missing": 1}
