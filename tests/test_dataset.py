import numpy as np
import pytest
from PIL import Image

from helpers.dataset import DatasetError, scan, split_of


def noisy_image(path, color, seed):
    """A JPEG of one colour with a little noise, unique per seed."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(color) + rng.normal(0, 12, (24, 24, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)
    return path


def make_tags(root, per_tag=25, colors=None, start=0):
    colors = colors or {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    for t, (tag, color) in enumerate(colors.items()):
        for i in range(start, start + per_tag):
            noisy_image(root / tag / f"{tag}_{i:03d}.jpg", color, seed=1000 * t + i)
    return root


def test_split_is_stable_when_images_are_added_and_renamed(tmp_path):
    make_tags(tmp_path, per_tag=25)
    before = {item.path: item.split for item in scan(tmp_path).items}
    assert {"train", "validation", "test"} == set(before.values())
    make_tags(tmp_path, per_tag=15, start=100)
    renamed = tmp_path / "red" / "red_000.jpg"
    renamed.rename(tmp_path / "red" / "zz_renamed.jpg")
    after = {item.path: item.split for item in scan(tmp_path).items}
    before[str(tmp_path / "red" / "zz_renamed.jpg")] = before.pop(str(renamed))
    assert all(after[path] == split for path, split in before.items())


def test_split_follows_the_percentages():
    rng = np.random.default_rng(0)
    splits = [split_of(rng.bytes(32).hex(), 10, 20) for _ in range(5000)]
    assert abs(splits.count("test") / 5000 - 0.20) < 0.03
    assert abs(splits.count("validation") / 5000 - 0.10) < 0.03


def test_duplicates_unreadable_and_cross_hashtag_images_are_reported(tmp_path):
    make_tags(tmp_path, per_tag=22)
    red0 = tmp_path / "red" / "red_000.jpg"
    (tmp_path / "red" / "copy_of_red.jpg").write_bytes(red0.read_bytes())
    (tmp_path / "green" / "also_red.jpg").write_bytes(red0.read_bytes())
    (tmp_path / "blue" / "broken.jpg").write_bytes(red0.read_bytes()[:100])
    (tmp_path / "blue" / "notes.txt").write_text("not an image, not even considered")
    dataset = scan(tmp_path)
    assert [p for p, _ in dataset.unreadable] == [str(tmp_path / "blue" / "broken.jpg")]
    # files are read in name order, so the copy is kept and the original is the duplicate
    assert dataset.duplicates == [(str(red0), str(tmp_path / "red" / "copy_of_red.jpg"))]
    assert len(dataset.cross_label) == 1
    assert sorted(dataset.cross_label[0][1])[0].endswith("also_red.jpg")
    copies = [item for item in dataset.items if item.digest == dataset.cross_label[0][0]]
    assert len({item.split for item in copies}) == 1, "identical images share one split"
    text = dataset.summary()
    assert "broken.jpg" in text and "duplicate" in text and "several hashtags" in text


def test_few_images_warn_and_too_few_are_refused(tmp_path):
    make_tags(tmp_path, per_tag=12)
    dataset = scan(tmp_path, validation_pct=0, testing_pct=0)
    assert any("only 12 images" in w for w in dataset.warnings)
    with pytest.raises(DatasetError, match="too few usable images for #blue"):
        scan(tmp_path, min_images=13)


def test_one_hashtag_is_not_a_classifier(tmp_path):
    make_tags(tmp_path, per_tag=5, colors={"red": (255, 0, 0)})
    with pytest.raises(DatasetError, match="at least two"):
        scan(tmp_path)
