"""What the notebooks share: the quick switch, where things live, and safe first steps.

``HASHTAG_QUICK=1`` (implied by ``CI=true``) switches every notebook to a quick
mode: a tiny synthetic data set, one offline backbone, few training steps. It
still runs every cell a participant runs. Quick mode works in ``.quick/`` so it
never mixes with a participant's real ``hashtags/`` and ``models/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def quick_mode() -> bool:
    """True when HASHTAG_QUICK=1, or in CI (CI=true), unless HASHTAG_QUICK=0."""
    flag = os.environ.get("HASHTAG_QUICK")
    if flag is not None:
        return flag.strip().lower() in ("1", "true", "yes")
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Workspace:
    """Where the workshop's data, models and runs live, and how big each step is."""

    root: Path
    quick: bool

    @property
    def hashtags(self) -> Path:
        return self.root / "hashtags"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def latest_model(self) -> Path:
        return self.models / "latest"

    @property
    def sample_per_tag(self) -> int:
        return 16 if self.quick else 60

    @property
    def epochs(self) -> int:
        return 30 if self.quick else 200

    def train_config(self, **overrides):
        """A TrainConfig pointing at this workspace, sized for the mode."""
        from helpers.train import TrainConfig

        settings = {
            "image_dir": str(self.hashtags),
            "runs_dir": str(self.runs),
            "models_dir": str(self.models),
            "epochs": self.epochs,
        }
        return TrainConfig(**{**settings, **overrides})


def workspace() -> Workspace:
    """The project folder in full mode, ``.quick/`` in quick mode (HASHTAG_WORKDIR overrides)."""
    quick = quick_mode()
    default = PROJECT_ROOT / ".quick" if quick else PROJECT_ROOT
    return Workspace(Path(os.environ.get("HASHTAG_WORKDIR") or default), quick)


def has_images(folder: Path) -> bool:
    from helpers.images import is_image_name

    return folder.is_dir() and any(
        p.is_file() and is_image_name(p)
        for d in folder.iterdir()
        if d.is_dir() and not d.name.startswith(".")
        for p in d.iterdir()
    )


def ensure_images(ws: Workspace) -> Path:
    """The hashtag folder, generating the synthetic sample first in quick mode if it is empty."""
    if not has_images(ws.hashtags):
        if not ws.quick:
            raise FileNotFoundError(f"no images in {ws.hashtags}: run 01_get_images.ipynb first")
        from helpers.sample import generate_sample

        generate_sample(ws.hashtags, per_tag=ws.sample_per_tag)
    return ws.hashtags


def ensure_model(ws: Workspace) -> Path:
    """The newest model, training one first in quick mode if there is none."""
    if not (ws.latest_model / "saved_model.pb").exists():
        if not ws.quick:
            raise FileNotFoundError(f"no model in {ws.models}: run 04_retrain.ipynb first")
        from helpers.train import train

        ensure_images(ws)
        train(ws.train_config(), progress=False)
    return ws.latest_model


class FolderServer:
    """Serve a folder over loopback HTTP (for the offline curl demo); use as a context manager."""

    def __init__(self, folder: Path, port: int = 0):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://localhost:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FolderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class ApiServer:
    """``hashtag serve`` in a child process, for notebooks: ``start()`` waits until it answers.

    Its log goes to ``<workspace>/api.log``; ``stop()`` ends it (also on ``with`` exit).
    """

    def __init__(
        self,
        model_dir: Path,
        port: int = 5055,
        allow_hosts: str = "localhost",
        log_file: Path | None = None,
    ):
        self.model_dir, self.port, self.allow_hosts = Path(model_dir), port, allow_hosts
        self.url = f"http://127.0.0.1:{port}"
        self.log_file = Path(log_file or Path(model_dir).resolve().parent.parent / "api.log")
        self.process = None

    def start(self, timeout: float = 120.0) -> ApiServer:
        import subprocess
        import sys
        import time
        import urllib.request

        env = {
            **os.environ,
            "HASHTAG_MODEL": str(self.model_dir),
            "HASHTAG_ALLOW_HOSTS": self.allow_hosts,
        }
        log = open(self.log_file, "ab")  # the child keeps its own copy of the descriptor
        self.process = subprocess.Popen(
            [sys.executable, "-m", "helpers.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API stopped at start-up; see {self.log_file}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the API did not answer within {timeout:.0f} s; see {self.log_file}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
