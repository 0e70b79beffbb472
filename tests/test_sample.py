"""The synthetic demo set: its layout, its determinism, and that a real network separates it."""

import itertools

import numpy as np
import pytest
from PIL import Image

from helpers import sample
from helpers.features import extract_features
from helpers.sample import DEFAULT_TAGS, SAMPLE_NOTE, generate_sample, render

SMALL = (96, 72)


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_one_folder_per_tag_with_numbered_jpegs(tmp_path):
    counts = generate_sample(tmp_path, per_tag=3, size=SMALL)
    assert counts == {tag: 3 for tag in DEFAULT_TAGS}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(DEFAULT_TAGS)
    expected = sorted(f"{t}/{t}_{i:03d}.jpg" for t in DEFAULT_TAGS for i in range(3))
    assert _files(tmp_path) == expected
    for path in tmp_path.rglob("*.jpg"):
        with Image.open(path) as img:
            assert img.format == "JPEG" and img.mode == "RGB" and img.size == SMALL


def test_default_size_and_a_subset_of_tags(tmp_path):
    assert generate_sample(tmp_path, per_tag=2, tags=("snow", "beach")) == {"snow": 2, "beach": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beach", "snow"]
    with Image.open(tmp_path / "snow" / "snow_001.jpg") as img:
        assert img.size == (320, 240)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = (
        generate_sample(tmp_path / name, per_tag=2, size=SMALL, seed=seed)
        for name, seed in (("a", 7), ("b", 7), ("c", 8))
    )
    assert a == b == c
    for rel in _files(tmp_path / "a"):
        same = (tmp_path / "a" / rel).read_bytes()
        assert (tmp_path / "b" / rel).read_bytes() == same, rel
        assert (tmp_path / "c" / rel).read_bytes() != same, rel


def test_an_image_depends_only_on_seed_tag_and_index(tmp_path):
    generate_sample(tmp_path / "all", per_tag=3, size=SMALL, seed=3)
    generate_sample(tmp_path / "one", per_tag=3, tags=("forest",), size=SMALL, seed=3)
    for i in range(3):
        name = f"forest/forest_{i:03d}.jpg"
        assert (tmp_path / "all" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_rerun_skips_existing_files_and_reports_what_is_there(tmp_path):
    first = generate_sample(tmp_path, per_tag=3, size=SMALL)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*.jpg")}
    assert generate_sample(tmp_path, per_tag=3, size=SMALL) == first
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*.jpg")} == before


def test_existing_file_is_never_overwritten_and_gaps_are_filled(tmp_path):
    mine = tmp_path / "beach" / "beach_001.jpg"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own holiday photo")
    counts = generate_sample(tmp_path, per_tag=3, tags=("beach",), size=SMALL)
    assert counts == {"beach": 3}
    assert mine.read_bytes() == b"my own holiday photo"
    assert _files(tmp_path) == [f"beach/beach_{i:03d}.jpg" for i in range(3)]


def test_counts_are_what_the_folder_holds_after_the_call(tmp_path):
    generate_sample(tmp_path, per_tag=5, tags=("snow",), size=SMALL)
    (tmp_path / "snow" / "notes.txt").write_text("not a sample image")
    assert generate_sample(tmp_path, per_tag=2, tags=("snow",), size=SMALL) == {"snow": 5}
    assert generate_sample(tmp_path, per_tag=6, tags=("snow",), size=SMALL) == {"snow": 6}


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    class Broken:
        def save(self, f, *args, **kwargs):
            f.write(b"\xff\xd8 half a jpeg")
            raise OSError("disk full")

    monkeypatch.setattr(sample, "render", lambda *args, **kwargs: Broken())
    with pytest.raises(OSError, match="disk full"):
        generate_sample(tmp_path, per_tag=2, tags=("sunset",))
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tags": ("sunset", "puppies")}, "puppies"),
        ({"tags": ("../escape",)}, "escape"),
        ({"tags": ("snow", "snow")}, "repeated"),
        ({"per_tag": -1}, "per_tag"),
        ({"size": (8, 8)}, "16x16"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_sample(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_render_gives_an_rgb_image_of_the_requested_size():
    for tag in DEFAULT_TAGS:
        img = render(tag, np.random.default_rng(0), size=(50, 40))
        assert img.mode == "RGB" and img.size == (50, 40)
    with pytest.raises(ValueError, match="sunset"):
        render("puppies", np.random.default_rng(0))


def test_the_note_and_the_docs_say_the_images_are_synthetic():
    assert "synthetic" in SAMPLE_NOTE.lower() and "instagram" in SAMPLE_NOTE.lower()
    assert "synthetic" in sample.__doc__.lower() and "not instagram" in sample.__doc__.lower()


def test_images_of_one_tag_are_not_near_copies():
    for tag in DEFAULT_TAGS:
        images = [
            np.asarray(render(tag, np.random.default_rng([1, i])), np.float32) for i in range(8)
        ]
        diffs = [np.abs(a - b).mean() for a, b in itertools.combinations(images, 2)]
        # measured: mean 30-46, smallest pair 17 (0-255 scale); a copy with new grain is ~5
        assert np.mean(diffs) > 15, tag
        assert min(diffs) > 8, tag


def test_a_pretrained_network_tells_the_tags_apart(tmp_path, lite0):
    per_tag = 16
    generate_sample(tmp_path, per_tag=per_tag, seed=1)
    paths = [tmp_path / t / f"{t}_{i:03d}.jpg" for t in DEFAULT_TAGS for i in range(per_tag)]
    result = extract_features(paths, lite0, progress=False)
    assert result.paths == [str(p) for p in paths] and not result.skipped
    features = result.features / np.linalg.norm(result.features, axis=1, keepdims=True)
    labels = np.repeat(np.arange(len(DEFAULT_TAGS)), per_tag)
    train = np.tile(np.arange(per_tag) % 2 == 0, len(DEFAULT_TAGS))
    centroids = np.stack(
        [features[train & (labels == k)].mean(axis=0) for k in range(len(DEFAULT_TAGS))]
    )
    distances = ((features[~train, None, :] - centroids[None]) ** 2).sum(axis=-1)
    accuracy = float((distances.argmin(axis=1) == labels[~train]).mean())
    assert accuracy >= 0.9, f"nearest-centroid accuracy {accuracy:.2f}"  # measured: 1.00
