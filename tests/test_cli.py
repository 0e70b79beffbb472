import subprocess
import sys

import numpy as np

from helpers.cli import main
from tests.conftest import write_image


def test_backbones_lists_names_and_sizes(capsys):
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "(default)" in out
    assert "inception_v3" in out and "299" in out


def test_features_writes_npz_and_reports_skips(tmp_path, tiny_module, capsys):
    folder = tmp_path / "hashtags" / "sunset"
    for i in range(3):
        write_image(folder / f"{i}.jpg", (250, 100 + 40 * i, 30))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "f.npz"
    code = main(
        [
            "features",
            str(tmp_path / "hashtags"),
            "--backbone",
            str(tiny_module),
            "--output",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "embedded 3 of 4 images" in printed and "skipped" in printed and "corrupt.jpg" in printed
    saved = np.load(out)
    assert saved["features"].shape == (3, 8) and saved["features"].dtype == np.float32
    assert [p.split("/")[-1] for p in saved["paths"]] == ["0.jpg", "1.jpg", "2.jpg"]


def test_features_on_an_empty_folder_fails_clearly(tmp_path, capsys):
    assert main(["features", str(tmp_path), "--quiet"]) == 1
    assert "no images" in capsys.readouterr().err


def test_the_installed_command_answers_help():
    done = subprocess.run(
        [sys.executable, "-m", "helpers.cli", "features", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--backbone" in done.stdout and "--output" in done.stdout
