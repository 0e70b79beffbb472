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
        print(f"{b.name:<20} {b.input_size:>5} {b.feature_dim:>5}  {needs:<8} {b.description}{mark}")
    print(f"\nAlso accepted: any TF Hub handle, URL of a compressed module, or SavedModel folder.\n"
          f"Built backbones are cached in {cache_dir()} (set HASHTAG_CACHE_DIR to move it); "
          "TF Hub downloads in TFHUB_CACHE_DIR.")
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
    result = extract_features(paths, loaded, batch_size=args.batch_size,
                              progress=not args.quiet)
    out = result.save(args.output)
    rate = len(result.paths) / result.seconds if result.seconds else 0.0
    print(f"embedded {len(result.paths)} of {len(paths)} images with {result.backbone} "
          f"-> {result.features.shape[1]}-d features in {result.seconds:.1f} s "
          f"({rate:.0f} images/s)")
    for path, reason in result.skipped:
        print(f"  skipped {path}: {reason}")
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashtag",
        description="Train an image classifier on Instagram hashtags, then use it.",
        epilog="Run 'hashtag COMMAND --help' for the options of one command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens in detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("backbones", help="list the pretrained feature extractors",
                       description="List the built-in backbones and what they need.")
    p.set_defaults(func=_cmd_backbones)

    p = sub.add_parser(
        "features", help="embed a folder of images into feature vectors",
        description="Turn every image under FOLDER into a feature vector with a pretrained "
                    "backbone and save them as an .npz file (arrays 'features', N x D float32, "
                    "and 'paths'). Files that cannot be decoded are skipped and listed.")
    p.add_argument("folder", type=Path, help="folder searched recursively for images")
    _add_backbone_flags(p)
    p.add_argument("--output", "-o", type=Path, default=Path("features.npz"),
                   help="where to write the .npz file (default: %(default)s)")
    p.add_argument("--batch_size", type=int, default=32, help="images per network call "
                   "(default: %(default)s)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_features)
    return parser


def _add_backbone_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", "-b", default="efficientnet_lite0",
                   help="backbone name (see 'hashtag backbones'), TF Hub handle, module URL or "
                        "SavedModel folder (default: %(default)s, works offline)")
    p.add_argument("--input_size", type=int, default=None,
                   help="input size in pixels, for a module that does not declare it")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from helpers.backbones import BackboneError

    try:
        return args.func(args)
    except (BackboneError, FileNotFoundError) as exc:
        print(f"hashtag {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
