"""The comparison flow: resolve versions -> load one test set -> score each -> log -> promote."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Failed

from classifier_core.comparison import (
    RULE,
    VersionScore,
    baseline_and_candidate,
    comparison_rows,
    explain,
    label_union,
    per_class_deltas,
    pick_winner,
)
from classifier_core.errors import DocclassError
from classifier_core.metrics import METRIC_NAMES
from flows.request_models import CompareDocumentClassifiersRequest
from tasks.comparison import (
    ComparedVersion,
    PreparedTestSet,
    TestSet,
    evaluate_version,
    load_test_set,
    log_comparison,
    promote_winner,
    publish_comparison_table,
    read_aliases,
    resolve_versions,
)
from tasks.registry import CHAMPION
from tasks.settings import work_dir

WINNER_TAG = "docclass.winner"


@dataclass(frozen=True)
class Outcome:
    """What the scores decide: the winner, and which two versions the deltas compare."""

    winner: str
    baseline: str
    candidate: str
    deltas: dict[str, float]
    rows: list[dict]


@flow(name="compare_document_classifiers", log_prints=False)
def compare_document_classifiers(
    request: CompareDocumentClassifiersRequest, prepared_test: PreparedTestSet | None = None
) -> dict:
    """Scores versions of a classifier on one test set, picks a winner and, with Promote, makes it champion.

    Rule: the higher F1Score wins; a tie goes to the higher MicroF1Score; if still tied, the
    current champion stays (else the newest of the tied versions wins). Every version is
    scored over the union of the versions' labels (a label a version does not know counts
    as never predicted). Logs a comparison run with one evaluation run per version to the
    classifier's MLflow experiment. A comparison that cannot run ends Failed with the reason.

    Args:
        request: The classifier, versions, test data and whether to promote.
        prepared_test: A test set already parsed, used instead of TestS3Uri (the training
            flow passes its own for AutoPromote).
    """
    job_id = uuid.UUID(str(flow_run.id)).hex if flow_run.id else uuid.uuid4().hex
    work = work_dir(job_id)
    name = request.DocumentClassifierName
    try:
        versions = resolve_versions(name, request.Versions, work)
        champion = read_aliases(name).get(CHAMPION)
        test = load_test_set(versions, request.TestS3Uri, prepared_test, work)
        labels = label_union([version.labels for version in versions])
        scores = [evaluate_version(version, test, labels) for version in versions]
        outcome = decide(scores, champion)
        run_id = log_comparison(name, scores, test, outcome.deltas, outcome.rows, RULE, {WINNER_TAG: outcome.winner})
        reason = promotion_reason(scores, outcome.winner, champion, test.description, run_id)
        promoted = promote_winner(name, outcome.winner, champion, reason) if request.Promote else False
        result = comparison_result(name, versions, test, scores, outcome, read_aliases(name))
        result.update(Reason=reason, Promoted=promoted, ComparisonRunId=run_id)
        publish_comparison_table(name, outcome.rows, f"version {outcome.winner} wins: {reason}")
        return result
    except DocclassError as exc:
        return Failed(message=str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def decide(scores: list[VersionScore], champion: str | None) -> Outcome:
    """Applies the rule, and picks the baseline and candidate the deltas compare."""
    baseline, candidate = baseline_and_candidate(scores, champion)
    by_version = {score.version: score for score in scores}
    return Outcome(
        winner=pick_winner(scores, champion),
        baseline=baseline,
        candidate=candidate,
        deltas=per_class_deltas(by_version[baseline], by_version[candidate]),
        rows=comparison_rows(scores, baseline, candidate),
    )


def promotion_reason(scores: list[VersionScore], winner: str, champion: str | None, test: str, run_id: str) -> str:
    """e.g. "F1Score 0.9312 > 0.9120 of version 1 on test.csv; comparison run 3f2a..."."""
    why = f"{explain(scores, winner)} on {test}; comparison run {run_id}"
    return f"stayed champion: {why}" if winner == champion else why


def comparison_result(
    name: str, versions: list[ComparedVersion], test: TestSet, scores: list[VersionScore], outcome: Outcome, aliases: dict[str, str]
) -> dict:
    """The flow's result (what ``docclass compare`` prints), with aliases as they are now."""
    aliases_of: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        aliases_of.setdefault(version, []).append(alias)
    listed = []
    for version, score in zip(versions, scores, strict=True):
        entry = {"Version": version.version, **({"VersionName": version.version_name} if version.version_name else {})}
        entry["Aliases"] = aliases_of.get(version.version, [])
        entry["EvaluationMetrics"] = {metric: round(value, 6) for metric, value in score.metrics.items()}
        listed.append(entry)
    return {
        "DocumentClassifierName": name,
        "TestS3Uri": test.description,
        "NumberOfTestDocuments": test.number_of_documents,
        "Versions": listed,
        "PerClassDeltas": {
            "Baseline": outcome.baseline,
            "Candidate": outcome.candidate,
            "F1Score": {label: round(delta, 6) for label, delta in outcome.deltas.items()},
        },
        "Winner": outcome.winner,
        "Rule": RULE,
        "Champion": aliases.get(CHAMPION),
    }


def auto_promote(describe: dict, test_path: str) -> dict:
    """After training: compares the new version with the champion on the training's own test
    set (TestS3Uri, TEST manifest or holdout, as the training flow parsed it) and promotes
    the winner.

    A comparison that fails does not fail the training, which has registered its version:
    the outcome says why nothing was promoted.

    Returns:
        The ``Promotion`` part of the training's describe: Winner, Promoted, Champion, Reason.
    """
    name, new = describe["DocumentClassifierName"], describe["ModelVersion"]
    champion = read_aliases(name).get(CHAMPION)
    if champion is None or champion == new:
        reason = f"version {new} already is the champion; there is nothing to compare it with"
        return {"Winner": new, "Promoted": False, "Champion": champion, "Reason": reason}
    request = CompareDocumentClassifiersRequest(DocumentClassifierName=name, Versions=[champion, new], Promote=True)
    state = compare_document_classifiers(request, PreparedTestSet(test_path, _test_description(describe)), return_state=True)
    if not state.is_completed():
        get_run_logger().warning("auto-promote: the comparison failed, nothing promoted: %s", state.message)
        return {"Promoted": False, "Champion": champion, "Reason": f"the comparison failed: {state.message}"}
    result = state.result()
    return {key: result[key] for key in ("Winner", "Promoted", "Champion", "Reason", "ComparisonRunId")}


def _test_description(describe: dict) -> str:
    config = describe["InputDataConfig"]  # URIs in describe are already redacted
    manifests = [m["S3Uri"] for m in config.get("AugmentedManifests", []) if m.get("Split") == "TEST"]
    holdout = f"the holdout of training job {describe['TrainingJobId']}"
    return config.get("TestS3Uri") or (manifests[0] if manifests else holdout)


def format_table(result: dict) -> str:
    """The comparison for people: metric rows, a column per version, the delta; then the verdict."""
    deltas = result["PerClassDeltas"]
    baseline, candidate = deltas["Baseline"], deltas["Candidate"]
    metrics = {v["Version"]: v["EvaluationMetrics"] for v in result["Versions"]}
    header = ["metric"] + [_column_name(v) for v in result["Versions"]] + [f"v{candidate} - v{baseline}"]
    rows = [
        [metric] + [f"{metrics[v][metric]:.4f}" for v in metrics] + [f"{metrics[candidate][metric] - metrics[baseline][metric]:+.4f}"]
        for metric in METRIC_NAMES
    ]
    rows += [[f"F1Score {label}"] + [""] * len(metrics) + [f"{delta:+.4f}"] for label, delta in deltas["F1Score"].items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in [header, *rows]]
    verdict = "is now champion" if result["Promoted"] else f"wins; champion: version {result['Champion']}"
    lines += [
        "",
        f"{result['NumberOfTestDocuments']} test documents: {result['TestS3Uri']}",
        f"version {result['Winner']} {verdict} ({result['Reason']})",
        f"rule: {result['Rule']}",
    ]
    return "\n".join(lines)


def _column_name(version: dict) -> str:
    aliases = ",".join(version["Aliases"])
    return f"v{version['Version']}" + (f" ({aliases})" if aliases else "")
