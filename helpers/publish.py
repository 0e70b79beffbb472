"""The delivery pipeline's gate: never publish a model that tests worse than the one out there.

``hashtag train`` evaluates every model on its test split and writes
``metrics.json`` next to it. :func:`should_publish` compares a candidate's
``test_accuracy`` with the published model's and says yes or no, with a reason a
person can read in the CI log. ``hashtag publish-check`` is that function on the
command line (exit 0: publish, 1: refuse, 2: cannot tell); ``hashtag model-report``
prints a model's test-split evaluation as Markdown (for a CI job summary).

The two accuracies come from each model's own test split. The pipeline scrapes the
same hashtags each time and the split follows image content, so older test images
stay test images; new images make the candidate's test set larger, not different in kind.
"""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.export import METRICS, MetricsError, read_metrics  # noqa: F401 - re-exported


def _accuracy(metrics: dict, where: Path) -> float | None:
    value = metrics.get("test_accuracy")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise MetricsError(f"{where / METRICS}: test_accuracy is {value!r}, not a number in [0, 1]")
    return float(value)


def _describe(metrics: dict, accuracy: float | None) -> str:
    name = metrics.get("run", "?")
    tests = (metrics.get("counts") or {}).get("test", "?")
    shown = f"{accuracy:.3f}" if accuracy is not None else "none"
    return f"{name} (test accuracy {shown} on {tests} test images)"


def should_publish(
    candidate_dir: str | Path, current_dir: str | Path | None, tolerance: float = 0.0
) -> tuple[bool, str]:
    """Whether the candidate may replace the published model, and why.

    Args:
        candidate_dir: the model folder just trained (holds ``metrics.json``).
        current_dir: the published model's folder; None or a missing folder means
            nothing is published yet, so the candidate is.
        tolerance: how far below the current test accuracy a candidate may fall and
            still be published (0: never lower).

    Returns:
        ``(publish, reason)``. A candidate without a test accuracy is refused: nothing
        shows that it is not worse.

    Raises:
        MetricsError: a metrics.json that is missing (candidate) or unreadable (either).
    """
    candidate_dir = Path(candidate_dir)
    candidate = read_metrics(candidate_dir)
    cand_acc = _accuracy(candidate, candidate_dir)
    cand_text = _describe(candidate, cand_acc)
    if cand_acc is None:
        return False, f"refuse: candidate {cand_text} has no test accuracy (empty test split?)"
    if current_dir is None or not Path(current_dir).exists():
        return True, f"publish: candidate {cand_text}; no model published before"
    current_dir = Path(current_dir)
    current = read_metrics(current_dir)
    cur_acc = _accuracy(current, current_dir)
    cur_text = _describe(current, cur_acc)
    note = ""
    if sorted(candidate.get("labels") or []) != sorted(current.get("labels") or []):
        note = "; note: the two models know different hashtags"
    if cur_acc is None:
        return True, (
            f"publish: candidate {cand_text}; published {cur_text} "
            f"has no test accuracy to beat{note}"
        )
    if cand_acc + tolerance < cur_acc:
        return False, (
            f"refuse: candidate {cand_text} is below published {cur_text}"
            + (f" by more than {tolerance:.3f}" if tolerance else "")
            + note
        )
    return True, f"publish: candidate {cand_text} >= published {cur_text}{note}"


def model_report(model_dir: str | Path) -> str:
    """A model's test-split evaluation from metrics.json, as Markdown."""
    model_dir = Path(model_dir)
    metrics = read_metrics(model_dir)
    acc = _accuracy(metrics, model_dir)
    counts = metrics.get("counts") or {}
    lines = [
        f"### Model `{metrics.get('run', model_dir.resolve().name)}`",
        "",
        f"- Backbone: `{metrics.get('backbone', '?')}`",
        (
            f"- Images: {counts.get('train', '?')} train, "
            f"{counts.get('validation', '?')} validation, {counts.get('test', '?')} test"
        ),
        "- Test accuracy: " + (f"**{acc:.3f}**" if acc is not None else "none (no test images)"),
    ]
    per_class = metrics.get("per_class") or {}
    if per_class:
        lines += ["", "| hashtag | precision | recall | test images |", "|---|---:|---:|---:|"]

        def fmt(value):
            return "–" if value is None else f"{value:.2f}"

        for label, row in per_class.items():
            lines.append(
                f"| #{label} | {fmt(row.get('precision'))} | {fmt(row.get('recall'))} "
                f"| {row.get('support', '?')} |"
            )
    return "\n".join(lines) + "\n"


def _cmd_publish_check(args) -> int:
    try:
        publish, reason = should_publish(args.candidate, args.against, args.tolerance)
    except MetricsError as exc:
        print(f"hashtag publish-check: error: {exc}", file=sys.stderr)
        return 2
    print(reason)
    return 0 if publish else 1


def _cmd_model_report(args) -> int:
    try:
        print(model_report(args.model), end="")
    except MetricsError as exc:
        print(f"hashtag model-report: error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_commands(subparsers) -> None:
    """Register ``publish-check`` and ``model-report`` on the ``hashtag`` command's subparsers."""
    p = subparsers.add_parser(
        "publish-check",
        help="refuse to publish a model that tests worse than the published one",
        description="Compare the test accuracy in CANDIDATE/metrics.json with the published "
        "model's. Exit 0: publish (also when nothing is published yet); "
        "1: refuse (lower accuracy, or none); 2: a metrics.json cannot be read.",
    )
    p.add_argument("candidate", type=Path, help="the model folder just trained")
    p.add_argument(
        "--against",
        type=Path,
        default=Path("models/latest"),
        help="the published model's folder; a missing folder means none (default: %(default)s)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        help="accept a candidate this far below the published accuracy (default: %(default)s)",
    )
    p.set_defaults(func=_cmd_publish_check)

    p = subparsers.add_parser(
        "model-report",
        help="print a model's test-split evaluation as Markdown",
        description="Test accuracy and per-hashtag precision and recall, from the "
        "metrics.json that 'hashtag train' wrote.",
    )
    p.add_argument(
        "model",
        type=Path,
        nargs="?",
        default=Path("models/latest"),
        help="model folder (default: %(default)s)",
    )
    p.set_defaults(func=_cmd_model_report)


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.publish publish-check ...``: the commands without the full CLI."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m helpers.publish")
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
