"""The core's exception family. The CLI and flows translate these once, at the edge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DocclassError(Exception):
    """Base class of every error docclass raises on purpose."""


@dataclass(frozen=True)
class Issue:
    """One problem found in input data: where it is, what was expected and what was found."""

    file: str
    line: int | None  # 1-based physical line where the record starts; None: the file as a whole
    message: str  # "expected ...; found ..."

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file} line {self.line}"
        return f"{where}: {self.message}" if where else self.message


class TrainingDataError(DocclassError):
    """The training (or test) data breaks the contract; carries every issue found."""

    def __init__(self, issues: Sequence[Issue], truncated: bool = False):
        self.issues = list(issues)
        self.truncated = truncated
        text = "\n".join(str(issue) for issue in self.issues)
        if truncated:
            text += "\n(more problems not shown)"
        super().__init__(text)


class InvalidNameError(DocclassError):
    """A classifier name, version name or tag breaks the naming rules (SPEC §4)."""


class ModelError(DocclassError):
    """A model directory is missing, corrupt, or of an unsupported format."""
