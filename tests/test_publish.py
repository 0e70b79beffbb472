"""The pipeline's publish gate: a model that tests worse than the published one is refused."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from helpers.publish import MetricsError, add_commands, model_report, should_publish


def make_model(path, accuracy, run=None, labels=("beach", "sunset"), test_images=20):
    path.mkdir(parents=True)
    metrics = {
        "run": run or path.name,
        "backbone": "efficientnet_lite0",
        "labels": list(labels),
        "counts": {"train": 160, "validation": 20, "test": test_images},
        "test_accuracy": accuracy,
        "per_class": {
            label: {"precision": 0.9, "recall": None if i else 0.8, "support": 10}
            for i, label in enumerate(labels)
        },
    }
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.mark.parametrize(
    ("candidate", "current", "expected"),
    [
        (0.91, 0.90, True),  # better
        (0.90, 0.90, True),  # as good: not lower
        (0.89, 0.90, False),  # worse by a little is still worse
        (0.0, 1.0, False),
    ],
)
def test_compares_test_accuracy(tmp_path, candidate, current, expected):
    cand = make_model(tmp_path / "cand", candidate)
    cur = make_model(tmp_path / "cur", current)
    publish, reason = should_publish(cand, cur)
    assert publish is expected
    assert reason.startswith("publish" if expected else "refuse")
    assert f"{candidate:.3f}" in reason and f"{current:.3f}" in reason


def test_publishes_when_nothing_was_published(tmp_path):
    cand = make_model(tmp_path / "cand", 0.4)
    for current in (None, tmp_path / "absent"):
        publish, reason = should_publish(cand, current)
        assert publish and "no model published before" in reason


def test_refuses_a_candidate_without_test_accuracy(tmp_path):
    cand = make_model(tmp_path / "cand", None, test_images=0)
    publish, reason = should_publish(cand, None)
    assert not publish and "no test accuracy" in reason


def test_publishes_over_a_model_without_test_accuracy(tmp_path):
    publish, reason = should_publish(
        make_model(tmp_path / "cand", 0.5), make_model(tmp_path / "cur", None)
    )
    assert publish and "no test accuracy to beat" in reason


def test_tolerance_and_different_hashtags_are_explained(tmp_path):
    cand = make_model(tmp_path / "cand", 0.88, labels=("beach", "snow"))
    cur = make_model(tmp_path / "cur", 0.90)
    assert should_publish(cand, cur, tolerance=0.05)[0]
    publish, reason = should_publish(cand, cur, tolerance=0.01)
    assert not publish and "by more than 0.010" in reason and "different hashtags" in reason


def test_follows_the_latest_symlink(tmp_path):
    models = tmp_path / "models"
    make_model(models / "20240101-000000-efficientnet_lite0", 0.95)
    (models / "latest").symlink_to("20240101-000000-efficientnet_lite0")
    publish, reason = should_publish(make_model(tmp_path / "cand", 0.9), models / "latest")
    assert not publish and "20240101-000000-efficientnet_lite0" in reason


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        '{"test_accuracy": "high"}',
        '{"test_accuracy": 1.5}',
        '{"test_accuracy": true}',
    ],
)
def test_unreadable_metrics_raise(tmp_path, content):
    (tmp_path / "cand").mkdir()
    (tmp_path / "cand" / "metrics.json").write_text(content)
    with pytest.raises(MetricsError):
        should_publish(tmp_path / "cand", None)
    # a broken published model is not silently overwritten either
    (tmp_path / "cur").mkdir()
    (tmp_path / "cur" / "metrics.json").write_text(content)
    with pytest.raises(MetricsError):
        should_publish(make_model(tmp_path / "ok", 0.9), tmp_path / "cur")


def test_missing_candidate_metrics_raise(tmp_path):
    (tmp_path / "cand").mkdir()
    with pytest.raises(MetricsError, match="hashtag train"):
        should_publish(tmp_path / "cand", None)


def test_cli_exit_codes(tmp_path, capsys):
    good, bad = make_model(tmp_path / "good", 0.9), make_model(tmp_path / "bad", 0.5)
    assert run_cli("publish-check", good, "--against", bad) == 0
    assert capsys.readouterr().out.startswith("publish:")
    assert run_cli("publish-check", bad, "--against", good) == 1
    assert capsys.readouterr().out.startswith("refuse:")
    assert run_cli("publish-check", bad, "--against", good, "--tolerance", "0.5") == 0
    capsys.readouterr()
    assert run_cli("publish-check", tmp_path / "nothing", "--against", good) == 2
    assert "error" in capsys.readouterr().err


def test_cli_defaults_to_models_latest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cand = make_model(tmp_path / "cand", 0.7)
    assert run_cli("publish-check", cand) == 0  # no models/latest here: first publication
    make_model(tmp_path / "models" / "run1", 0.8)
    (tmp_path / "models" / "latest").symlink_to("run1")
    assert run_cli("publish-check", cand) == 1
    assert "run1" in capsys.readouterr().out


def test_model_report_is_markdown(tmp_path, capsys):
    model = make_model(tmp_path / "m", 0.875)
    report = model_report(model)
    assert "**0.875**" in report and "| #beach | 0.90 | 0.80 | 10 |" in report
    assert "| #sunset | 0.90 | – | 10 |" in report
    assert run_cli("model-report", model) == 0 and capsys.readouterr().out == report
    assert run_cli("model-report", tmp_path / "none") == 2


def test_runs_as_a_module(tmp_path):
    good, bad = make_model(tmp_path / "good", 0.9), make_model(tmp_path / "bad", 0.5)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.publish",
            "publish-check",
            str(bad),
            "--against",
            str(good),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "refuse" in done.stdout
