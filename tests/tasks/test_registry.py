"""Registering a training job is idempotent: a retry after a failure half way through leaves
exactly one complete version, and a retry after success registers nothing new."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from classifier_core.model import TextClassifier
from flows.demo_data import multi_class_rows
from tasks import registry


def test_a_retry_after_a_half_done_registration_leaves_one_complete_version(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    # Through the environment, not registry.configure: set_tracking_uri would leak to later tests.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.default_tracking_uri(home))
    rows = multi_class_rows(200)
    model_dir = TextClassifier(search=False).fit([t for _, t in rows], [(label,) for label, _ in rows]).save(tmp_path / "m")
    describe = {"DocumentClassifierName": "idem", "TrainingJobId": "a" * 32, "Status": "TRAINED"}
    arguments = dict(name="idem", model_dir=model_dir, describe=describe, params={"mode": "MULTI_CLASS"},
                     metrics={"Accuracy": 0.9}, artifacts=[], tags={"team": "support"}, home=home)

    real_alias = MlflowClient.set_registered_model_alias

    def registry_goes_away(self, *args, **kwargs):
        raise ConnectionError("the tracking server went away")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", registry_goes_away)
    with pytest.raises(ConnectionError):
        registry.register_classifier(**arguments)
    client = MlflowClient()
    assert len(client.search_model_versions("name='idem'")) == 1  # half registered: no alias, no describe file

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", real_alias)
    version = registry.register_classifier(**arguments)
    again = registry.register_classifier(**arguments)  # a retry whose first answer was lost

    versions = client.search_model_versions("name='idem'")
    assert [v.version for v in versions] == [version.version] == [again.version]
    assert version.version != "1"  # the half-registered version 1 was deleted
    assert client.get_model_version_by_alias("idem", "champion").version == version.version
    assert registry.describe(version)["TrainingJobId"] == "a" * 32
    runs = client.search_runs([r.experiment_id for r in client.search_experiments() if r.name == "idem"])
    assert sorted(run.info.status for run in runs) == ["FAILED", "FINISHED"]
