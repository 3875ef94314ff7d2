"""Allowed values and limits of the Comprehend contract, declared once (SPEC §1-§5)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Mode(str, enum.Enum):
    """Classifier mode, fixed at training time and stored with the model."""

    MULTI_CLASS = "MULTI_CLASS"
    MULTI_LABEL = "MULTI_LABEL"


class DataFormat(str, enum.Enum):
    """Training data formats."""

    COMPREHEND_CSV = "COMPREHEND_CSV"
    AUGMENTED_MANIFEST = "AUGMENTED_MANIFEST"


class InputFormat(str, enum.Enum):
    """Classification job input formats."""

    ONE_DOC_PER_LINE = "ONE_DOC_PER_LINE"
    ONE_DOC_PER_FILE = "ONE_DOC_PER_FILE"


class ClassifierStatus(str, enum.Enum):
    SUBMITTED = "SUBMITTED"
    TRAINING = "TRAINING"
    TRAINED = "TRAINED"
    TRAINED_WITH_WARNING = "TRAINED_WITH_WARNING"
    IN_ERROR = "IN_ERROR"
    STOP_REQUESTED = "STOP_REQUESTED"
    STOPPED = "STOPPED"


class JobStatus(str, enum.Enum):
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOP_REQUESTED = "STOP_REQUESTED"
    STOPPED = "STOPPED"


DEFAULT_LABEL_DELIMITER = "|"
# SPEC §2: space ~ ! @ # $ % ^ * - _ + = | \ : ; TAB > ? /  (never a comma)
ALLOWED_LABEL_DELIMITERS = frozenset(" ~!@#$%^*-_+=|\\:;\t>?/")

MAX_CLASSES = 1_000  # multi-class
MAX_LABELS = 100  # multi-label
MAX_TRAINING_DOCUMENTS = 1_000_000
MAX_TRAINING_BYTES = 5 * 1024**3
MAX_CLASS_NAME_CHARS = 5_000
MIN_DOCS_PER_CLASS = 10  # Comprehend's hard minimum; docclass warns unless strict
RECOMMENDED_DOCS_PER_CLASS = 50
MIN_MULTI_LABEL_DOCUMENTS = 50
MAX_AUGMENTED_MANIFEST_ATTRIBUTES = 5
MAX_ISSUES_REPORTED = 50

HOLDOUT_FRACTION = 0.10
HOLDOUT_CAP = 10_000
HOLDOUT_SEED = 0

MAX_DOCUMENT_BYTES_PER_FILE = 10 * 1024**2  # ONE_DOC_PER_FILE
MAX_REALTIME_TEXT_BYTES = 10 * 1024
TOP_CLASSES = 3  # multi-class output lists the top 3 classes
MIN_LABELS_LISTED = 3  # multi-label output lists at least 3 labels
LABEL_THRESHOLD = 0.5

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_NAME_CHARS = 63
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256


@dataclass(frozen=True)
class TrainingConfig:
    """What training needs to know about the data, beyond the data itself."""

    mode: Mode = Mode.MULTI_CLASS
    label_delimiter: str = DEFAULT_LABEL_DELIMITER
    strict: bool = False


# How `docclass compare` picks a winner (classifier_core.comparison applies it).
PROMOTION_RULE = (
    "the higher F1Score wins; a tie goes to the higher MicroF1Score; if still tied, the current "
    "champion stays (else the newest of the tied versions wins)"
)
