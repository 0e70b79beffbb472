import numpy as np
import pytest
from skimage import data

from helpers import efficientnet_lite
from helpers.efficientnet_lite import WeightsMismatch
from tests.conftest import cosine

CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
ESPRESSO = 967


def _logits(lite0, image):
    return lite0.module.imagenet_logits(lite0.backbone.preprocess(image[None])).numpy()[0]


def test_chelsea_is_a_cat(lite0):
    top3 = np.argsort(-_logits(lite0, data.chelsea()))[:3]
    assert CATS & set(top3.tolist()), top3


def test_coffee_is_espresso(lite0):
    assert int(np.argmax(_logits(lite0, data.coffee()))) == ESPRESSO


def test_features_of_two_cat_crops_are_closer_than_cat_and_coffee(lite0):
    cat = data.chelsea()
    crop_a, crop_b = cat[:260, :380], cat[40:, 60:]
    f = [
        lite0.features(lite0.backbone.preprocess(x[None])).numpy()
        for x in (crop_a, crop_b, data.coffee())
    ]
    assert f[0].shape == (1, 1280)
    assert cosine(f[0], f[1]) > cosine(f[0], f[2]) + 0.1


def test_keras_model_has_the_published_parameter_count():
    model = efficientnet_lite.build_model()
    assert model.count_params() == efficientnet_lite.EXPECTED_KERAS_PARAMS


def test_refuses_weights_of_another_shape(monkeypatch):
    real = efficientnet_lite.read_legacy_state_dict

    def tampered(path):
        state = real(path)
        state["_fc.weight"] = state["_fc.weight"].reshape(1280, 1000)  # same numbers, wrong shape
        return state

    monkeypatch.setattr(efficientnet_lite, "read_legacy_state_dict", tampered)
    with pytest.raises(WeightsMismatch, match="_fc"):
        efficientnet_lite.load_pretrained()


def test_refuses_a_state_dict_with_missing_tensors(monkeypatch):
    real = efficientnet_lite.read_legacy_state_dict

    def partial(path):
        state = real(path)
        del state["_blocks.3._bn1.running_var"]
        return state

    monkeypatch.setattr(efficientnet_lite, "read_legacy_state_dict", partial)
    with pytest.raises(WeightsMismatch, match="295 tensors"):
        efficientnet_lite.load_pretrained()
