"""Flow parameters as pydantic models mirroring Comprehend's request fields.

Prefect renders them as forms (with these descriptions and defaults) in its UI.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

# Aliased: the Comprehend field names Mode and DataFormat would shadow the enum types.
from classifier_core.config import DEFAULT_LABEL_DELIMITER, PROMOTION_RULE
from classifier_core.config import DataFormat as DataFormatEnum
from classifier_core.config import InputFormat as InputFormatEnum
from classifier_core.config import Mode as ModeEnum
from classifier_core.errors import InvalidNameError
from classifier_core.names import validate_name, validate_tags
from tasks.storage import redact


class Tag(BaseModel):
    Key: str = Field(min_length=1, max_length=128)
    Value: str = Field(default="", max_length=256)


def _valid_tags(value: list[Tag]) -> list[Tag]:
    _checked(validate_tags, {tag.Key: tag.Value for tag in value})
    return value


# Comprehend's tag rules, checked once for every request that carries tags.
TagList = Annotated[list[Tag], AfterValidator(_valid_tags)]


def _no_credentials(value: str) -> str:
    """A URI carrying a user or password would be stored as given in Prefect's flow run
    parameters (and shown in its UI) and in MLflow's tags: refuse it, without echoing it."""
    if redact(value) != value:
        raise ValueError(
            "expected a URI without credentials (user:password@): they would be stored in the Prefect flow run and "
            "the MLflow registry; give S3 credentials through AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or an IAM role"
        )
    return value


# Every URI a request carries: a local path, file:// or s3://, never with credentials in it.
Uri = Annotated[str, AfterValidator(_no_credentials)]


class AugmentedManifest(BaseModel):
    S3Uri: Uri = Field(description="A SageMaker Ground Truth manifest (JSON lines): a file or a prefix.")
    AttributeNames: list[str] = Field(min_length=1, max_length=5, description="Label attribute names (1-5).")
    Split: str = Field(default="TRAIN", pattern="^(TRAIN|TEST)$", description="TRAIN or TEST.")


class DocumentClassifierInputDataConfig(BaseModel):
    DataFormat: DataFormatEnum = Field(default=DataFormatEnum.COMPREHEND_CSV)
    S3Uri: Uri | None = Field(default=None, description="Training CSV: local path, file:// or s3:// file or prefix.")
    TestS3Uri: Uri | None = Field(default=None, description="Optional test CSV; else a stratified 10% holdout.")
    LabelDelimiter: str = Field(default=DEFAULT_LABEL_DELIMITER, min_length=1, max_length=1,
                                description="Multi-label only: the character joining labels.")
    AugmentedManifests: list[AugmentedManifest] = Field(default_factory=list)


class DocumentClassifierOutputDataConfig(BaseModel):
    S3Uri: Uri | None = Field(default=None, description="Where <TrainingJobId>/output/output.tar.gz goes; default $DOCCLASS_HOME/output.")


class CreateDocumentClassifierRequest(BaseModel):
    """CreateDocumentClassifier, as docclass takes it."""

    model_config = ConfigDict(use_enum_values=False)

    DocumentClassifierName: str = Field(description="Name of the classifier (the MLflow registered model).")
    VersionName: str | None = Field(default=None, description="Optional version name, unique per classifier.")
    Mode: ModeEnum = Field(default=ModeEnum.MULTI_CLASS)
    InputDataConfig: DocumentClassifierInputDataConfig
    OutputDataConfig: DocumentClassifierOutputDataConfig = Field(default_factory=DocumentClassifierOutputDataConfig)
    Tags: TagList = Field(default_factory=list)
    Strict: bool = Field(default=False, description="Apply Comprehend's minimums (10 docs per class) as errors.")
    Fast: bool = Field(default=False, description="Skip the model search and train the default configuration.")
    SearchBudgetSeconds: float | None = Field(
        default=None, gt=0, le=86_400, allow_inf_nan=False,
        description="Seconds the model search may spend in all, the first candidate included (a candidate not "
        "expected to finish within them is skipped). Default: 10. Not with Fast; training sets large enough to "
        "train out of core ignore it.",
    )
    AutoPromote: bool = Field(
        default=False,
        description="After registering, compare the new version with the champion on this training's test data "
        "(or its holdout) and make the winner champion, as compare with Promote does.",
    )

    @field_validator("DocumentClassifierName")
    @classmethod
    def _name(cls, value: str) -> str:
        return _checked(validate_name, value, "classifier name")

    @field_validator("VersionName")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        return value if value is None else _checked(validate_name, value, "version name")

    @model_validator(mode="after")
    def _budget_needs_a_search(self) -> CreateDocumentClassifierRequest:
        if self.Fast and self.SearchBudgetSeconds is not None:
            raise ValueError(f"Fast skips the model search, so it takes no SearchBudgetSeconds; found "
                             f"{self.SearchBudgetSeconds:g}")
        return self

    def tag_dict(self) -> dict[str, str]:
        return {tag.Key: tag.Value for tag in self.Tags}


def _checked(check, *args):
    try:
        return check(*args)
    except InvalidNameError as exc:
        raise ValueError(str(exc)) from None


class ClassificationInputDataConfig(BaseModel):
    S3Uri: Uri = Field(description="Documents: local path, file:// or s3:// file or prefix (every object whose key starts with it).")
    InputFormat: InputFormatEnum = Field(default=InputFormatEnum.ONE_DOC_PER_LINE,
                                         description="ONE_DOC_PER_LINE (every line a document) or ONE_DOC_PER_FILE.")


class ClassificationOutputDataConfig(BaseModel):
    S3Uri: Uri = Field(description="Where <JobId>/output/output.tar.gz is written.")


class StartDocumentClassificationJobRequest(BaseModel):
    """StartDocumentClassificationJob, as docclass takes it."""

    JobName: str | None = Field(default=None, max_length=256, description="Optional name to find the job by.")
    DocumentClassifier: str = Field(
        description="The classifier: NAME (its champion), NAME:VERSION (VersionName or registry version) or NAME@ALIAS."
    )
    InputDataConfig: ClassificationInputDataConfig
    OutputDataConfig: ClassificationOutputDataConfig
    Tags: TagList = Field(default_factory=list)
    Workers: int | None = Field(default=None, ge=1, le=256,
                                description="docclass only: processes classifying in parallel; default every core.")
    Explain: bool = Field(default=False, description="docclass only: add Explanations (top terms per assigned class) to each record.")
    DaskAddress: str | None = Field(
        default=None, max_length=512,
        description="docclass only: a Dask scheduler address (tcp://host:8786) to classify the shards on; "
        "default: processes on the machine running the job. Inputs, output and the model registry must be "
        "reachable from the Dask workers (S3 and an MLflow server, not local paths).",
    )
    OnlyNewDocuments: bool = Field(
        default=False,
        description="docclass only: skip input objects that earlier OnlyNewDocuments jobs with the same input and "
        "output locations already classified; an empty prefix completes with no documents. For scheduled jobs.",
    )

    @field_validator("JobName")
    @classmethod
    def _job_name(cls, value: str | None) -> str | None:
        # Comprehend's JobName pattern: letters, spaces, digits and _ . : / = + - % @
        if value is not None and not re.fullmatch(r"[\w\s.:/=+\-%@]{1,256}", value):
            raise ValueError(f"expected a job name of 1-256 letters, digits, spaces and _.:/=+-%@; found {value!r}")
        return value


class CompareDocumentClassifiersRequest(BaseModel):
    """Compare versions of a classifier on one test set; optionally promote the winner.

    docclass's own: Comprehend has no such call.
    """

    DocumentClassifierName: str = Field(description="Name of the classifier (the MLflow registered model).")
    Versions: list[str] = Field(
        default_factory=list,
        description="Versions to compare, each a registry version number or a VersionName; "
        "empty: the champion against the challenger.",
    )
    TestS3Uri: Uri | None = Field(
        default=None,
        description="Test data every version is scored on (Comprehend CSV: path, file:// or s3://, file or prefix); "
        "default: the TestS3Uri the newest compared version was trained with.",
    )
    Promote: bool = Field(default=False, description=f"Make the winner champion. Rule: {PROMOTION_RULE}.")

    @field_validator("DocumentClassifierName")
    @classmethod
    def _name(cls, value: str) -> str:
        return _checked(validate_name, value, "classifier name")

    @field_validator("Versions")
    @classmethod
    def _versions(cls, value: list[str]) -> list[str]:
        if len(value) == 1:
            raise ValueError(f"expected no versions (champion against challenger) or at least two; found only {value[0]!r}")
        for version in value:
            if not version.isdigit():
                _checked(validate_name, version, "version (a number or a VersionName)")
        return value
