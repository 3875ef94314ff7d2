"""The MLflow pyfunc adapter, logged as code: it wraps the core's own model directory.

MLflow executes this file when it loads the model (``mlflow.models.set_model``), with the
``classifier_core`` package shipped beside it through ``code_paths``, so a registered model
serves with ``mlflow models serve`` without docclass's flows, tasks or Prefect.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from classifier_core.inference import classify_texts
from classifier_core.model import load_model


class DocclassModel(PythonModel):
    """Input: a DataFrame with a ``Text`` column (or one column), a list of strings, or a
    string. Output: one Comprehend-shaped result per document (``Classes`` or ``Labels``,
    or ``ErrorCode``/``ErrorMessage`` for an empty document)."""

    def load_context(self, context):
        self.model = load_model(context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        return classify_texts(self.model, _texts(model_input))


def _texts(model_input) -> list[str]:
    if isinstance(model_input, pd.DataFrame):
        column = "Text" if "Text" in model_input.columns else model_input.columns[0]
        return [str(text) for text in model_input[column].tolist()]
    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, dict) and "Text" in model_input:
        text = model_input["Text"]
        return [text] if isinstance(text, str) else list(text)
    return [str(text) for text in model_input]


mlflow.models.set_model(DocclassModel())
