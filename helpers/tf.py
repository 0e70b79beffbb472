"""The one module that imports TensorFlow; every other module imports it from here.

``tensorflow_hub.KerasLayer`` needs the Keras 2 API (``tf_keras``). TensorFlow
2.16+ ships Keras 3 under ``tf.keras`` unless ``TF_USE_LEGACY_KERAS=1`` is set
before TensorFlow is imported, so this module sets it first, then quiets
TensorFlow's C++ start-up log lines (set ``TF_CPP_MIN_LOG_LEVEL=0`` to see them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise ImportError(
        "TensorFlow was imported before helpers.tf could set TF_USE_LEGACY_KERAS=1; "
        "import helpers (or set TF_USE_LEGACY_KERAS=1) before importing tensorflow"
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _quiet_native_stderr():
    """Hide what TensorFlow's C++ runtime prints to fd 2 before its logging starts.

    Those lines (oneDNN notice, "could not find cuda drivers", cuInit failure)
    ignore TF_CPP_MIN_LOG_LEVEL. They are replayed if the import fails, and
    never hidden when TF_CPP_MIN_LOG_LEVEL is 0.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


with _quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tensorflow_hub as hub  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices()  # device discovery logs here, once

tf.get_logger().setLevel(logging.ERROR)

__all__ = ["tf", "hub", "keras"]
