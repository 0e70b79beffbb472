"""The ``hashtag`` command: every step of the workshop from a terminal.

Each subcommand parses its flags and calls one library function; nothing here
does work that a notebook or the API could not do by calling ``helpers``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from helpers import __version__

log = logging.getLogger("hashtag")


def _cmd_backbones(args) -> int:
    from helpers.backbones import BUILTIN, DEFAULT_BACKBONE, cache_dir

    print(f"{'name':<20} {'input':>5} {'dim':>5}  {'needs':<8} description")
    for b in BUILTIN.values():
        needs = "offline" if b.offline else "network"
        mark = " (default)" if b.name == DEFAULT_BACKBONE else ""
        print(
            f"{b.name:<20} {b.input_size:>5} {b.feature_dim:>5}  {needs:<8} {b.description}{mark}"
        )
    print(
        f"\nAlso accepted: any TF Hub handle, URL of a compressed module, or SavedModel folder.\n"
        f"Built backbones are cached in {cache_dir()} (set HASHTAG_CACHE_DIR to move it); "
        "TF Hub downloads in TFHUB_CACHE_DIR."
    )
    return 0


def _cmd_features(args) -> int:
    from helpers.backbones import load_backbone
    from helpers.features import extract_features
    from helpers.images import list_images

    paths = list_images(args.folder)
    if not paths:
        print(f"no images (jpg, jpeg, png, webp, gif, bmp) under {args.folder}", file=sys.stderr)
        return 1
    loaded = load_backbone(args.backbone, args.input_size)
    result = extract_features(paths, loaded, batch_size=args.batch_size, progress=not args.quiet)
    out = result.save(args.output)
    rate = len(result.paths) / result.seconds if result.seconds else 0.0
    print(
        f"embedded {len(result.paths)} of {len(paths)} images with {result.backbone} "
        f"-> {result.features.shape[1]}-d features in {result.seconds:.1f} s "
        f"({rate:.0f} images/s)"
    )
    for path, reason in result.skipped:
        print(f"  skipped {path}: {reason}")
    print(f"wrote {out}")
    return 0


def _cmd_sample(args) -> int:
    from helpers.sample import SAMPLE_NOTE, generate_sample

    counts = generate_sample(args.dest, per_tag=args.per_tag, seed=args.seed)
    for tag, n in counts.items():
        print(f"#{tag:<12} {n:>4} images in {Path(args.dest) / tag}")
    print(SAMPLE_NOTE)
    return 0


def train_config_from_args(args):
    """Build a TrainConfig from parsed flags (shared by ``hashtag train`` and retrain.py)."""
    import dataclasses

    from helpers.train import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})


def run_training(config, misclassified: bool, quiet: bool, output_labels=None) -> int:
    """Train, print the summary the original retrain.py users expect, return an exit code."""
    from helpers.train import train

    result = train(config, progress=not quiet)
    print(result.summary())
    if misclassified:
        print(f"misclassified test images: {len(result.misclassified)}")
        for m in result.misclassified:
            print(
                f"  {m['path']}: #{m['true']} predicted as #{m['predicted']} "
                f"({m['probability']:.2f})"
            )
    if output_labels:
        Path(output_labels).write_text("\n".join(result.dataset.labels) + "\n")
        print(f"labels: {output_labels}")
    return 0


def _cmd_train(args) -> int:
    return run_training(
        train_config_from_args(args), args.print_misclassified_test_images, args.quiet
    )


def _cmd_predict(args) -> int:
    import json

    from helpers.fetch import FetchError, FetchPolicy, fetch_bytes, is_url
    from helpers.images import ImageError
    from helpers.predict import Prediction, Predictor

    predictor = Predictor(args.model)
    # the person at the terminal chose these URLs: local addresses are theirs to use
    policy = FetchPolicy(allow_private=True)
    failures = 0
    for source in args.images:
        try:
            data = fetch_bytes(source, policy) if is_url(source) else Path(source).read_bytes()
            probs = predictor.predict_bytes([data])[0]
            prediction = Prediction(source, predictor.top_k(probs, args.top))
        except (FetchError, ImageError, OSError) as exc:
            prediction = Prediction(source, [], error=str(exc))
            failures += 1
        if args.json:
            print(json.dumps(prediction.to_dict()))
        elif prediction.error:
            print(f"{source}: error: {prediction.error}")
        else:
            print(f"{source}")
            for hashtag, p in prediction.top:
                print(f"  #{hashtag:<16} {p:6.1%}")
    return 1 if failures else 0


def _cmd_serve(args) -> int:
    from helpers.serve import ServiceConfig, run_server

    logging.getLogger("hashtag.access").setLevel(logging.INFO)
    logging.getLogger("helpers.serve").setLevel(logging.INFO)
    overrides = {"model_dir": str(args.model)} if args.model else {}
    run_server(ServiceConfig.from_env(**overrides), args.host, args.port, args.threads, args.dev)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashtag",
        description="Train an image classifier on Instagram hashtags, then use it.",
        epilog="Run 'hashtag COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens in detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "backbones",
        help="list the pretrained feature extractors",
        description="List the built-in backbones and what they need.",
    )
    p.set_defaults(func=_cmd_backbones)

    p = sub.add_parser(
        "features",
        help="embed a folder of images into feature vectors",
        description="Turn every image under FOLDER into a feature vector with a pretrained "
        "backbone and save them as an .npz file (arrays 'features', N x D float32, "
        "and 'paths'). Files that cannot be decoded are skipped and listed.",
    )
    p.add_argument("folder", type=Path, help="folder searched recursively for images")
    _add_backbone_flags(p)
    p.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path("features.npz"),
        help="where to write the .npz file (default: %(default)s)",
    )
    p.add_argument(
        "--batch_size", type=int, default=32, help="images per network call (default: %(default)s)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser(
        "sample",
        help="generate a small synthetic hashtag set for offline use",
        description="Write synthetic scene images (#sunset, #beach, #forest, #snow, "
        "#citylights) into DEST/<tag>/, so the workshop runs without Instagram. "
        "Existing files are kept.",
    )
    p.add_argument(
        "--dest",
        type=Path,
        default=Path("hashtags"),
        help="folder of hashtag folders (default: %(default)s)",
    )
    p.add_argument(
        "--per_tag", type=int, default=40, help="images per hashtag (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser(
        "train",
        help="train a hashtag classifier and export it",
        description="Transfer learning: a softmax head on a pretrained backbone's features "
        "(cached per image), early stopping on the validation split, then one "
        "SavedModel in models/<run>/ (models/latest points at it) and TensorBoard "
        "logs in runs/<run>/.",
    )
    add_train_flags(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "predict",
        help="say which hashtags pictures belong to",
        description="Print the most likely hashtags for image files or http(s) URLs.",
    )
    p.add_argument("images", nargs="+", metavar="PATH_OR_URL", help="image files or URLs")
    p.add_argument(
        "--model",
        "-m",
        type=Path,
        default=Path("models/latest"),
        help="exported model folder (default: %(default)s)",
    )
    p.add_argument(
        "--top", "-k", type=int, default=3, help="how many hashtags (default: %(default)s)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "serve",
        help="run the prediction API (JSON over HTTP)",
        description="Serve a trained model: GET /?picture=URL (the original workshop's call), "
        "POST /predict (uploads, raw bodies or JSON URLs), /healthz, /labels, /model, "
        "POST /reload, and POST /train when HASHTAG_TRAIN_TOKEN is set. Runs under "
        "gunicorn; access logs are JSON lines on stderr. Environment: HASHTAG_MODEL, "
        "HASHTAG_IMAGE_DIR, HASHTAG_TRAIN_TOKEN, HASHTAG_ALLOW_PRIVATE_URLS=1, "
        "HASHTAG_ALLOW_HOSTS=host1,host2.",
    )
    p.add_argument(
        "--model",
        "-m",
        type=Path,
        default=None,
        help="model folder (default: $HASHTAG_MODEL or models/latest)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (default: %(default)s)",
    )
    p.add_argument("--port", "-p", type=int, default=5000, help="default: %(default)s")
    p.add_argument("--threads", type=int, default=8, help="request threads (default: %(default)s)")
    p.add_argument("--dev", action="store_true", help="Flask's development server instead")
    p.set_defaults(func=_cmd_serve)

    from helpers.scrape import add_commands as add_data_commands  # scrape, import, import-urls

    add_data_commands(sub)
    from helpers.publish import add_commands as add_publish_commands  # publish-check, model-report

    add_publish_commands(sub)
    return parser


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """The flags of ``hashtag train``; retrain.py adds the original spellings on top."""
    from helpers.train import TrainConfig

    d = TrainConfig()
    p.add_argument(
        "--image_dir",
        default=d.image_dir,
        help="folder with one sub-folder of images per hashtag (default: %(default)s)",
    )
    _add_backbone_flags(p)
    p.add_argument(
        "--epochs",
        type=int,
        default=d.epochs,
        help="most epochs for the head; early stopping ends sooner (default: %(default)s)",
    )
    p.add_argument("--batch_size", type=int, default=d.batch_size, help="default: %(default)s")
    p.add_argument(
        "--learning_rate",
        type=float,
        default=d.learning_rate,
        help="Adam learning rate of the head (default: %(default)s)",
    )
    p.add_argument("--dropout", type=float, default=d.dropout, help="default: %(default)s")
    p.add_argument(
        "--label_smoothing", type=float, default=d.label_smoothing, help="default: %(default)s"
    )
    p.add_argument(
        "--patience",
        type=int,
        default=d.patience,
        help="epochs without validation improvement before stopping (default: %(default)s)",
    )
    p.add_argument(
        "--no_class_weights",
        dest="class_weights",
        action="store_false",
        help="do not reweight unbalanced hashtags",
    )
    p.add_argument(
        "--validation_pct", type=float, default=d.validation_pct, help="default: %(default)s"
    )
    p.add_argument("--testing_pct", type=float, default=d.testing_pct, help="default: %(default)s")
    p.add_argument(
        "--min_images",
        type=int,
        default=d.min_images,
        help="refuse hashtags with fewer usable images (default: %(default)s)",
    )
    p.add_argument(
        "--augment",
        action="store_true",
        help="train through the backbone on randomly cropped, scaled, flipped and "
        "brightened images (slower: bypasses the bottleneck cache)",
    )
    p.add_argument(
        "--fine_tune",
        action="store_true",
        help="also unfreeze the backbone, with --fine_tune_learning_rate",
    )
    p.add_argument(
        "--fine_tune_learning_rate",
        type=float,
        default=d.fine_tune_learning_rate,
        help="default: %(default)s",
    )
    p.add_argument(
        "--backbone_epochs",
        type=int,
        default=d.backbone_epochs,
        help="epochs through the backbone with --augment/--fine_tune (default: %(default)s)",
    )
    p.add_argument(
        "--bottleneck_dir",
        default=None,
        help="feature cache folder (default: bottlenecks/ in the cache dir)",
    )
    p.add_argument("--runs_dir", default=d.runs_dir, help="TensorBoard runs (default: %(default)s)")
    p.add_argument("--models_dir", default=d.models_dir, help="default: %(default)s")
    p.add_argument("--run_name", default=None, help="default: <time>-<backbone>")
    p.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    p.add_argument(
        "--print_misclassified_test_images",
        action="store_true",
        help="list the test images the model gets wrong",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _add_backbone_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backbone",
        "-b",
        default="efficientnet_lite0",
        help="backbone name (see 'hashtag backbones'), TF Hub handle, module URL or "
        "SavedModel folder (default: %(default)s, works offline)",
    )
    p.add_argument(
        "--input_size",
        type=int,
        default=None,
        help="input size in pixels, for a module that does not declare it",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from helpers.backbones import BackboneError
    from helpers.dataset import DatasetError
    from helpers.predict import ModelError

    try:
        return args.func(args)
    except (BackboneError, DatasetError, ModelError, FileNotFoundError) as exc:
        print(f"hashtag {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
