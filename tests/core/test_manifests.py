"""classifier_core.manifests: SageMaker Ground Truth augmented manifests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from classifier_core import training_data
from classifier_core.config import DataFormat, Mode, TrainingConfig
from classifier_core.errors import Issue, TrainingDataError
from classifier_core.manifests import read_augmented_manifest
from classifier_core.training_data import load_training_data

DATA = Path(__file__).resolve().parents[1] / "data" / "training"
MULTI_CLASS = TrainingConfig()
MULTI_LABEL = TrainingConfig(mode=Mode.MULTI_LABEL)


def load(texts: dict[str, str | bytes], config: TrainingConfig = MULTI_CLASS, **kwargs):
    sources = [(name, io.BytesIO(t.encode() if isinstance(t, str) else t)) for name, t in texts.items()]
    return load_training_data(sources, config, **kwargs)


# --- augmented manifests ------------------------------------------------------------------


def manifest(lines: list, attributes=("topic",), config: TrainingConfig = MULTI_CLASS):
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    data, issues = read_augmented_manifest(io.BytesIO(text.encode()), "m.jsonl", attributes, config)
    return data, [str(issue) for issue in issues]


def topic(name: str, source: str = "some text") -> dict:
    return {"source": source, "topic": 0, "topic-metadata": {"class-name": name}}


def test_valid_multiclass_manifest():
    with open(DATA / "manifest_multiclass.jsonl", "rb") as fp:
        data, issues = read_augmented_manifest(fp, "manifest_multiclass.jsonl", ["topic"], MULTI_CLASS)
    assert issues == []
    assert data.texts[1] == "Parliament votes on budget"
    assert data.labels == [("sports",), ("politics",), ("sports",)]


def test_valid_multilabel_manifest_through_load(monkeypatch):
    monkeypatch.setattr(training_data, "RECOMMENDED_DOCS_PER_CLASS", 1)
    with open(DATA / "manifest_multilabel.jsonl", "rb") as fp:
        data, warnings = load_training_data(
            [("manifest_multilabel.jsonl", fp)], MULTI_LABEL, DataFormat.AUGMENTED_MANIFEST, ["genre"]
        )
    assert data.labels == [("news", "sports"), ("finance",), ("news",)]
    assert [w.message for w in warnings] == ["expected at least 50 documents in MULTI_LABEL mode; found 3"]


def test_manifest_attributes_are_united():
    line = {"source": "x", "a": 0, "a-metadata": {"class-name": "sports"},
            "b": [1, 2], "b-metadata": {"class-map": {"1": "news", "2": "sports"}}}
    data, issues = manifest([line], ("a", "b"), MULTI_LABEL)
    assert issues == [] and data.labels == [("news", "sports")]
    data, issues = manifest([line], ("a", "b"))
    assert issues == ["m.jsonl line 1: expected one class per document in MULTI_CLASS mode; found 2 ('news', 'sports')"]
    data, issues = manifest([topic("sports") | {"t2": 3, "t2-metadata": {"class-name": "sports"}}], ("topic", "t2"))
    assert issues == [] and data.labels == [("sports",)]


def test_manifest_line_errors():
    lines = [
        topic("ok"),
        "{not json",
        "[1, 2]",
        {"topic": 0, "topic-metadata": {"class-name": "a"}},
        {"source": 3, "topic": 0, "topic-metadata": {"class-name": "a"}},
        {"source": "x"},
        {"source": "x", "topic": 0},
        {"source": "x", "topic": 0, "topic-metadata": {"confidence": 1}},
        {"source": "x", "topic": [4], "topic-metadata": {"class-map": {"0": "a"}}},
        {"source": "x", "topic": [0], "topic-metadata": {"class-name": "a"}},
        {"source": "x", "topic": [], "topic-metadata": {"class-map": {}}},
        topic("a", source=" "),
        topic("a\nb"),
    ]
    data, issues = manifest(lines)
    assert data.labels == [("ok",)]
    assert issues == [
        "m.jsonl line 2: expected a JSON object; found invalid JSON (Expecting property name enclosed in double quotes at column 2)",
        "m.jsonl line 3: expected a JSON object; found an array",
        "m.jsonl line 4: expected a 'source' string; found no such field",
        "m.jsonl line 5: expected a 'source' string; found a number",
        "m.jsonl line 6: expected the attribute 'topic'; found no such field",
        "m.jsonl line 7: expected 'topic-metadata' to be an object; found no such field",
        "m.jsonl line 8: expected 'topic-metadata' to have a 'class-name' string; found null",
        "m.jsonl line 9: expected the 'class-map' of 'topic-metadata' to name class 4; found null",
        "m.jsonl line 10: expected 'topic-metadata' to have a 'class-map' object; found null",
        "m.jsonl line 11: expected a label; found none",
        "m.jsonl line 12: expected a text; found only whitespace",
        "m.jsonl line 13: expected a class name without control characters; found 'a\\nb'",
    ]


def test_manifest_blank_lines_bom_and_invalid_bytes():
    text = b"\xef\xbb\xbf" + json.dumps(topic("a")).encode() + b"\n\n" + b'{"source": "caf\xe9"}\n'
    data, issues = read_augmented_manifest(io.BytesIO(text), "m.jsonl", ["topic"], MULTI_CLASS)
    assert data.labels == [("a",)]
    assert [str(i) for i in issues] == ["m.jsonl line 3: expected UTF-8 text; found invalid byte 0xe9"]


@pytest.mark.parametrize("attributes, found", [((), 0), (("a", "b", "c", "d", "e", "f"), 6)])
def test_manifest_attribute_count(attributes, found):
    with pytest.raises(TrainingDataError) as caught:
        load({"m.jsonl": "{}\n"}, data_format=DataFormat.AUGMENTED_MANIFEST, attribute_names=attributes)
    assert caught.value.issues == [Issue("", None, f"expected 1 to 5 attribute names; found {found}")]

