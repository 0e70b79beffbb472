"""Notebook hygiene (outputs stripped, a kernel everyone has) and the helpers they call."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import workshop
from helpers.plots import LiveTrainingPlot, prediction_bars, to_png
from helpers.quality import (
    apply_cleaning,
    dhash,
    hamming,
    image_table,
    recommend_cleaning,
    similar_pairs,
)
from tests.test_dataset import make_tags

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_workshop_has_its_numbered_notebooks_and_the_dashboard():
    names = [p.name for p in NOTEBOOKS]
    assert names[:6] == [
        "01_get_images.ipynb",
        "02_inspect_data.ipynb",
        "03_augment.ipynb",
        "04_retrain.ipynb",
        "05_evaluate_and_compare.ipynb",
        "06_deploy.ipynb",
    ]
    assert "dashboard.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs_and_with_the_python3_kernel(path):
    book = json.loads(path.read_text())
    assert book["metadata"]["kernelspec"]["name"] == "python3"
    for cell in book["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{path.name} has outputs: clear them before committing"
            )
            assert "sys.path" not in "".join(cell["source"]), "import the installed package"


def test_quick_mode_switch(monkeypatch):
    monkeypatch.delenv("HASHTAG_QUICK", raising=False)
    monkeypatch.setenv("CI", "true")
    assert workshop.quick_mode()
    monkeypatch.setenv("HASHTAG_QUICK", "0")
    assert not workshop.quick_mode()
    monkeypatch.delenv("CI")
    monkeypatch.setenv("HASHTAG_QUICK", "1")
    ws = workshop.workspace()
    assert ws.quick and ws.root.name == ".quick" and ws.sample_per_tag < 60


def test_dhash_finds_a_resized_copy_but_not_a_different_picture():
    gradient = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (64, 1, 3))
    resized = np.asarray(Image.fromarray(gradient).resize((40, 40)))
    assert hamming(dhash(gradient), dhash(resized)) <= 4
    assert hamming(dhash(gradient), dhash(gradient[:, ::-1])) > 20


def test_cleaning_is_recommended_then_applied_only_on_request(tmp_path):
    make_tags(tmp_path, per_tag=6)
    original = tmp_path / "red" / "red_000.jpg"
    (tmp_path / "blue" / "copy.jpg").write_bytes(original.read_bytes())
    (tmp_path / "green" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    table = image_table(tmp_path)
    pairs = similar_pairs(table)
    assert pairs.exact.sum() == 1 and pairs.across_hashtags.any()
    actions = recommend_cleaning(table, pairs)
    # blue/copy.jpg is listed before red/red_000.jpg, so the red one is the copy set aside
    assert {Path(a.path).name for a in actions} == {"broken.jpg", "red_000.jpg"}
    assert (tmp_path / "green" / "broken.jpg").exists(), "recommending changes nothing"
    moved = apply_cleaning(actions, tmp_path)
    assert len(moved) == 2 and all(".quarantine" in str(p) for p in moved)
    assert not (tmp_path / "green" / "broken.jpg").exists()


def test_live_plot_records_and_draws_outside_a_notebook():
    live = LiveTrainingPlot()
    for epoch in range(3):
        live(
            epoch,
            {"loss": 1.0 / (epoch + 1), "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.4},
        )
    assert len(live.history) == 3
    assert to_png(live.figure())[:4] == b"\x89PNG"
    assert to_png(prediction_bars([("sunset", 0.9), ("beach", 0.1)]))[:4] == b"\x89PNG"
