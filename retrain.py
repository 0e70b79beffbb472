#!/usr/bin/env python
"""The original workshop's training command, on today's TensorFlow.

    python retrain.py --image_dir ./hashtags/

TensorFlow's retrain.py needed TensorFlow 1; this one takes its flags and runs
the same library function as ``hashtag train`` (helpers.train.train). Flags of
the original that no longer apply (e.g. --final_tensor_name) are not accepted.
The default backbone is efficientnet_lite0, which works offline; pass
``--tfhub_module inception_v3`` for the original network (needs network once).
"""

import argparse
import sys

from helpers.cli import run_training, train_config_from_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Retrain a pretrained image network on hashtag folders "
        "(the original workshop's retrain.py, rebuilt on helpers.train)."
    )
    p.add_argument("--image_dir", required=True, help="path to folders of labeled images")
    p.add_argument(
        "--tfhub_module",
        dest="backbone",
        default="efficientnet_lite0",
        help="backbone name, TF Hub handle, module URL or SavedModel folder "
        "(default: %(default)s, offline; 'inception_v3' is the original)",
    )
    p.add_argument("--input_size", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--how_many_training_steps",
        dest="max_steps",
        type=int,
        default=4000,
        help="most training steps (batches) for the head; early stopping may end "
        "sooner (default: %(default)s)",
    )
    p.add_argument(
        "--learning_rate",
        type=float,
        default=0.01,
        help="learning rate of the head (default: %(default)s)",
    )
    p.add_argument(
        "--testing_percentage",
        dest="testing_pct",
        type=float,
        default=10,
        help="percentage of images used as the test set (default: %(default)s)",
    )
    p.add_argument(
        "--validation_percentage",
        dest="validation_pct",
        type=float,
        default=10,
        help="percentage of images used as the validation set (default: %(default)s)",
    )
    p.add_argument(
        "--train_batch_size",
        dest="batch_size",
        type=int,
        default=100,
        help="images per training step (default: %(default)s)",
    )
    p.add_argument(
        "--bottleneck_dir",
        default=None,
        help="where cached feature vectors go (default: the cache dir)",
    )
    p.add_argument(
        "--summaries_dir",
        dest="runs_dir",
        default="runs",
        help="TensorBoard logs, one sub-folder per run (default: %(default)s)",
    )
    p.add_argument(
        "--saved_model_dir",
        default=None,
        help="where to export the SavedModel (default: models/<run>, and "
        "models/latest points at it)",
    )
    p.add_argument(
        "--output_labels", default=None, help="also write the labels, one per line, to this file"
    )
    p.add_argument(
        "--print_misclassified_test_images",
        action="store_true",
        help="print the test images that were misclassified",
    )
    p.add_argument(
        "--flip_left_right",
        action="store_true",
        help="randomly mirror training images (turns on augmentation)",
    )
    p.add_argument(
        "--random_crop",
        type=float,
        default=0,
        help="percent margin to randomly crop off (turns on augmentation)",
    )
    p.add_argument(
        "--random_scale",
        type=float,
        default=0,
        help="percent to randomly scale by (turns on augmentation)",
    )
    p.add_argument(
        "--random_brightness",
        type=float,
        default=0,
        help="percent to randomly change brightness by (turns on augmentation)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    # retrain.py distorted images whenever any distortion flag was given
    args.augment = bool(
        args.flip_left_right or args.random_crop or args.random_scale or args.random_brightness
    )
    config = train_config_from_args(args)
    from helpers.backbones import BackboneError
    from helpers.dataset import DatasetError

    try:
        return run_training(
            config, args.print_misclassified_test_images, args.quiet, args.output_labels
        )
    except (BackboneError, DatasetError) as exc:
        print(f"retrain.py: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
