"""One path from texts to Comprehend-shaped results, shared by jobs, real time and pyfunc."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from classifier_core.config import LABEL_THRESHOLD, Mode
from classifier_core.documents import EMPTY_MESSAGE, Document, DocumentError
from classifier_core.predictions import multi_class_record, multi_label_record, prediction_records

if TYPE_CHECKING:  # (a Scorer classifies as well, without the import of scikit-learn this brings)
    from classifier_core.model import TextClassifier
    from classifier_core.scorer import Scorer


def classify_documents(model: TextClassifier | Scorer, documents: Sequence[Document], explain: bool = False) -> list[dict]:
    """One prediction record per document, in order; error documents keep their error.

    With ``explain``, each prediction record also gets ``Explanations`` (see ``explain_records``).
    """
    texts = [d.text for d in documents if d.error is None]
    scores = model.predict_scores(texts)
    records = prediction_records(documents, model.labels_, scores, model.mode is Mode.MULTI_LABEL)
    if explain:
        explain_records(model, texts, [r for r, d in zip(records, documents) if d.error is None])
    return records


def explain_records(model: TextClassifier | Scorer, texts: Sequence[str], records: Sequence[dict]) -> None:
    """Adds ``Explanations``: for each class the record assigns (the top class; or every label
    scored >= 0.5, else the top label), its top contributing terms as ``[term, weight]``."""
    decided = []
    for record in records:
        if "Classes" in record:
            decided.append([record["Classes"][0]["Name"]])
        else:
            assigned = [entry["Name"] for entry in record["Labels"] if entry["Score"] >= LABEL_THRESHOLD]
            decided.append(assigned or [record["Labels"][0]["Name"]])
    for record, explanation in zip(records, model.explain(texts, decided)):
        record["Explanations"] = explanation


def classify_texts(model: TextClassifier | Scorer, texts: Sequence[str], explain: bool = False) -> list[dict]:
    """``{"Classes": [...]}`` or ``{"Labels": [...]}`` per text; an error record for a blank one."""
    valid = [i for i, text in enumerate(texts) if text.strip()]
    scores = model.predict_scores([texts[i] for i in valid])
    record = multi_label_record if model.mode is Mode.MULTI_LABEL else multi_class_record
    results: list[dict] = [
        {"ErrorCode": DocumentError.EMPTY_DOCUMENT.value, "ErrorMessage": EMPTY_MESSAGE} for _ in texts
    ]
    for row, i in enumerate(valid):
        results[i] = record(model.labels_, scores[row])
    if explain:
        explain_records(model, [texts[i] for i in valid], [results[i] for i in valid])
    return results
