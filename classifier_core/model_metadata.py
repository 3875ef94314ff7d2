"""What a saved model directory says about itself, readable without loading the model.

``metadata.json`` beside the pickled model holds its format, mode and labels. A job's own
process needs no more than that (its shards load the model), so it never imports scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path

from classifier_core.errors import ModelError

# /3: the weights are in weights.npy, beside model.joblib and scorer.pkl, which share them. Format
# /2 models (the weights inside model.joblib) still load; docclass before /3 refuses /3 ones.
MODEL_FORMAT = "docclass-model/3"
READABLE_FORMATS = (MODEL_FORMAT, "docclass-model/2")
METADATA_FILE = "metadata.json"


def read_metadata(directory: str | Path) -> dict:
    """The metadata of a model saved by ``TextClassifier.save``.

    Raises:
        ModelError: if the directory holds no docclass model or one of another format.
    """
    directory = Path(directory)
    metadata_path = directory / METADATA_FILE
    if not metadata_path.is_file():
        raise ModelError(f"{directory}: expected a docclass model directory; found no {METADATA_FILE}")
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    if metadata.get("format") not in READABLE_FORMATS:
        raise ModelError(
            f"{metadata_path}: expected model format {MODEL_FORMAT!r}; found {metadata.get('format')!r}"
        )
    return metadata
