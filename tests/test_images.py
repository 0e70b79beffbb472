"""Every awkward file a scrape produces: decoded correctly, or skipped with a reason."""

import io

import numpy as np
import pytest
from PIL import Image

from helpers.features import extract_features
from helpers.images import ImageError, decode_image, list_images, read_image
from tests.conftest import write_image


def _jpeg_bytes(img: Image.Image, **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **save)
    return buf.getvalue()


def test_truncated_jpeg_is_refused():
    data = _jpeg_bytes(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    )
    with pytest.raises(ImageError, match="cannot decode"):
        decode_image(data[: len(data) // 2])


def test_text_file_named_jpg_is_refused(tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("<html>this is not a photo</html>")
    with pytest.raises(ImageError, match="not an image"):
        read_image(fake)


def test_empty_file_is_refused():
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")


def test_one_pixel_image_is_decoded_and_resized():
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (10, 20, 30)).save(buf, "PNG")
    assert decode_image(buf.getvalue()).shape == (1, 1, 3)
    resized = decode_image(buf.getvalue(), size=8)
    assert resized.shape == (8, 8, 3)
    assert tuple(resized[4, 4]) == (10, 20, 30)


def test_16_bit_png_is_scaled_not_clipped():
    buf = io.BytesIO()
    Image.fromarray(np.full((6, 6), 32768, np.uint16)).save(buf, "PNG")
    rgb = decode_image(buf.getvalue())
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 6, 3)
    assert 120 <= rgb.mean() <= 135  # half of 16-bit full scale is mid-grey


def test_cmyk_jpeg_becomes_rgb():
    red = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    rgb = decode_image(_jpeg_bytes(red))
    assert rgb.shape == (16, 16, 3)
    r, g, b = rgb.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied():
    # 40 wide x 20 high, red on the left, blue on the right; EXIF 6 = rotate 90° clockwise
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb = decode_image(_jpeg_bytes(img, exif=exif, quality=95))
    assert rgb.shape == (40, 20, 3), "displayed 20 wide x 40 high"
    top, bottom = rgb[5, 10], rgb[35, 10]
    assert top[0] > 200 and top[2] < 60, "left edge turns to the top"
    assert bottom[2] > 200 and bottom[0] < 60


def test_grey_palette_and_transparent_images_become_rgb():
    grey = Image.new("L", (4, 4), 77)
    palette = Image.new("RGB", (4, 4), (0, 128, 0)).convert("P", palette=Image.Palette.ADAPTIVE)
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    for img, expected in ((grey, (77, 77, 77)), (palette, (0, 128, 0)), (clear, (255, 255, 255))):
        buf = io.BytesIO()
        img.save(buf, "PNG")
        assert tuple(decode_image(buf.getvalue())[0, 0]) == expected


def test_decompression_bomb_is_refused():
    buf = io.BytesIO()
    Image.new("L", (4000, 3000)).save(buf, "PNG")
    with pytest.raises(ImageError, match="limit"):
        decode_image(buf.getvalue(), max_pixels=1_000_000)


def test_list_images_is_case_insensitive_and_skips_hidden(tmp_path):
    for name in (
        "a.JPG",
        "b.jpeg",
        "c.Png",
        "d.webp",
        "notes.txt",
        ".hidden.jpg",
        ".ipynb_checkpoints/e.jpg",
        "sub/f.jpg",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.JPG", "b.jpeg", "c.Png", "d.webp", "sub/f.jpg"]


def test_feature_extraction_skips_and_reports_bad_files(tmp_path, tiny_module):
    good = [write_image(tmp_path / f"good{i}.jpg", (40 * i, 90, 200)) for i in range(5)]
    (tmp_path / "broken.jpg").write_bytes(good[0].read_bytes()[:200])
    (tmp_path / "text.jpg").write_text("hello")
    paths = sorted(tmp_path.iterdir())
    result = extract_features(paths, str(tiny_module), batch_size=2, progress=False)
    assert result.features.shape == (5, 8)
    assert result.paths == [str(p) for p in good]
    skipped = dict(result.skipped)
    assert set(skipped) == {str(tmp_path / "broken.jpg"), str(tmp_path / "text.jpg")}
    assert "not an image" in skipped[str(tmp_path / "text.jpg")]


def test_pipeline_features_match_in_graph_preprocessing(tmp_path, tiny_module):
    """Pillow's resize in the file pipeline and the backbone's TF rule agree."""
    from helpers.backbones import load_backbone

    rng = np.random.default_rng(1)
    photo = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 255, (90, 70, 3), dtype=np.uint8)).save(photo)
    loaded = load_backbone(str(tiny_module))
    piped = extract_features([photo], loaded, progress=False).features
    direct = loaded.features(loaded.backbone.preprocess(read_image(photo)[None])).numpy()
    np.testing.assert_allclose(piped, direct, atol=0.02)
