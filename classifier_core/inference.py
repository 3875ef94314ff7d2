"""One path from texts to Comprehend-shaped results, shared by jobs, real time and pyfunc."""

from __future__ import annotations

from collections.abc import Sequence

from classifier_core.config import Mode
from classifier_core.documents import Document, DocumentError
from classifier_core.model import TextClassifier
from classifier_core.predictions import multi_class_record, multi_label_record, prediction_records

EMPTY_MESSAGE = "document is empty"


def classify_documents(model: TextClassifier, documents: Sequence[Document]) -> list[dict]:
    """One prediction record per document, in order; error documents keep their error."""
    texts = [d.text for d in documents if d.error is None]
    scores = model.predict_scores(texts)
    return prediction_records(documents, model.labels_, scores, model.mode is Mode.MULTI_LABEL)


def classify_texts(model: TextClassifier, texts: Sequence[str]) -> list[dict]:
    """``{"Classes": [...]}`` or ``{"Labels": [...]}`` per text; an error record for a blank one."""
    valid = [i for i, text in enumerate(texts) if text.strip()]
    scores = model.predict_scores([texts[i] for i in valid])
    record = multi_label_record if model.mode is Mode.MULTI_LABEL else multi_class_record
    results: list[dict] = [
        {"ErrorCode": DocumentError.EMPTY_DOCUMENT.value, "ErrorMessage": EMPTY_MESSAGE} for _ in texts
    ]
    for row, i in enumerate(valid):
        results[i] = record(model.labels_, scores[row])
    return results
