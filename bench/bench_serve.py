"""Benchmark: what does the HTTP service add on top of the bare model?

Trains a small efficientnet_lite0 model on a synthetic sample (setup, not timed),
starts the real server (``hashtag serve``: gunicorn, one gthread worker) on a free
loopback port and measures, with one real ~320px JPEG (../shared/datasets/clothing-cc0
when present, else a sample image):

  (a)  bare model: ``Predictor.predict_arrays`` on one decoded 224x224 image, median
       latency; and its own batch-8 throughput (8 images per call, images/s),
  (b)  ``POST /predict`` with the JPEG as raw body from one client on a keep-alive
       connection, p50/p99 latency; target p50(b)/a <= 1.5,
  (c)  ``POST /predict`` from 8 concurrent clients (one image per request, each client
       on its own keep-alive connection), images/s; target (c)/(a batch-8) >= 0.7,
  load ``POST /predict`` from 16 concurrent clients, >= 2,000 requests: target zero 5xx
       and the worker's resident memory (VmRSS) growing by less than 10% from after
       warm-up to the end. The warm-up runs every batch shape 1..16 once (one multipart
       request of k images is one model call of k) and then a short 16-client burst:
       TensorFlow and malloc keep buffers per batch shape, a one-off ~40% jump from the
       idle server that stays flat afterwards; the table shows RSS at each step.

(a) and (b) are measured in ROUNDS interleaved rounds, as are (a batch-8) and (c); each
ratio is the median of the rounds' ratios, so drift on this noisy shared 2-core machine
hits both sides alike. The client threads run on the same cores as the server, as a
loopback benchmark must; their CPU per request is printed. The server is started
through ``helpers.cli.main`` exactly as ``hashtag serve --model DIR --port P --threads T``
would, plus one bench-only route, ``GET /_bench/stats``, that reads the micro-batcher's
counters (model calls and images), so the table can say how many images each model call
grouped. ``--plain`` starts ``python -m helpers.cli serve`` untouched instead (no counters).

Usage: python bench/bench_serve.py [--requests N] [--concurrent_requests N]
       [--load_requests N] [--clients C] [--load_clients C] [--rounds R] [--threads T]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "datasets" / "clothing-cc0"

# Runs in the server process: helpers.cli.main as `hashtag serve` would, with create_app
# wrapped to add a read-only route for the micro-batcher's counters.
SERVER_SNIPPET = """
import sys
import helpers.serve as serve
from helpers.cli import main

_create_app = serve.create_app

def create_app(config=None):
    app = _create_app(config)
    batcher = app.extensions["hashtag"]["batcher"]
    app.add_url_rule("/_bench/stats", "bench_stats",
                     lambda: {"batches": batcher.batches, "images": batcher.images})
    return app

serve.create_app = create_app
sys.exit(main(sys.argv[1:]))
"""


# -- setup ---------------------------------------------------------------------------------


def pick_jpeg(sample_dir: Path) -> tuple[Path, list[Path], str]:
    """The JPEG every request sends, plus 8 images for the batch-8 measurement."""
    from PIL import Image

    if PHOTOS.is_dir():
        paths = sorted(PHOTOS.rglob("*.jpg"))
        sized = [p for p in paths if max(Image.open(p).size) == 320] or paths
        return sized[0], sized[:8], f"{PHOTOS.name} photo"
    paths = sorted(sample_dir.rglob("*.jpg"))
    return paths[0], paths[:8], "synthetic sample image (../shared not found)"


def train_model(tmp: Path, per_tag: int) -> Path:
    from helpers.sample import generate_sample
    from helpers.train import TrainConfig, train

    generate_sample(tmp / "sample", per_tag=per_tag)
    result = train(
        TrainConfig(
            image_dir=str(tmp / "sample"),
            runs_dir=str(tmp / "runs"),
            models_dir=str(tmp / "models"),
            bottleneck_dir=str(tmp / "bottlenecks"),
        ),
        progress=False,
    )
    return Path(result.model_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the server process ------------------------------------------------------------------------


class Server:
    def __init__(self, model_dir: Path, threads: int, log_path: Path, plain: bool):
        self.port = free_port()
        args = [
            "serve",
            "--model",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--threads",
            str(threads),
        ]
        cmd = (
            [sys.executable, "-m", "helpers.cli", *args]
            if plain
            else [sys.executable, "-c", SERVER_SNIPPET, *args]
        )
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        self.stats_available = not plain

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 300) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({self.proc.returncode}):\n{self.log_tail()}"
                )
            try:
                if self.get("/healthz", timeout=2)[0] == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready after {timeout} s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        pids = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                pids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
        return sorted(set(pids))

    def worker_rss_mb(self) -> float:
        """VmRSS of the gunicorn worker(s), the process that holds the model, in MiB."""
        return sum(rss_mb(pid) for pid in self.worker_pids())

    def worker_cpu_s(self) -> float:
        """User + system CPU seconds of the worker(s) so far."""
        total = 0
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return total / os.sysconf("SC_CLK_TCK")

    def batcher_counts(self) -> tuple[int, int] | None:
        if not self.stats_available:
            return None
        stats = json.loads(self.get("/_bench/stats")[1])
        return stats["batches"], stats["images"]

    def stop(self) -> float:
        started = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# -- clients -----------------------------------------------------------------------------------


class Client:
    """One keep-alive connection that POSTs the JPEG to /predict."""

    def __init__(self, port: int, body: bytes):
        self.port, self.body = port, body
        self.headers = {"Content-Type": "image/jpeg", "Content-Length": str(len(body))}
        self.conn = self._connect()

    def _connect(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.connect()
        return conn

    def post(self) -> tuple[int, float, float | None]:
        """(status or 0 on a connection error, client seconds, server's timing.total_ms)."""
        started = time.perf_counter()
        try:
            self.conn.request("POST", "/predict", body=self.body, headers=self.headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = self._connect()
            return 0, time.perf_counter() - started, None
        elapsed = time.perf_counter() - started
        server_ms = None
        if resp.status == 200:
            server_ms = json.loads(data).get("timing", {}).get("total_ms")
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = self._connect()
        return resp.status, elapsed, server_ms

    def close(self):
        self.conn.close()


def post_multipart(port: int, body: bytes, count: int) -> int:
    """POST ``count`` copies of the JPEG as one multipart upload; the HTTP status."""
    boundary = "bench-serve-boundary"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image{{}}"; '
        f'filename="image{{}}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    data = b"".join(part.format(i, i).encode() + body + b"\r\n" for i in range(count))
    data += f"--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(
            "POST",
            "/predict",
            body=data,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def run_clients(port: int, body: bytes, clients: int, total: int, sample_rss=None):
    """``total`` requests shared by ``clients`` threads; returns (records, wall seconds).

    Connections are opened before the clock starts. ``sample_rss`` is called about every
    0.25 s while the requests run (the load run's memory samples)."""
    conns = [Client(port, body) for _ in range(clients)]
    tickets = itertools.count()
    records: list[tuple[int, float, float | None]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    done = threading.Event()

    def work(client: Client):
        mine = []
        barrier.wait()
        while next(tickets) < total:
            mine.append(client.post())
        with lock:
            records.extend(mine)

    threads = [threading.Thread(target=work, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    sampler = None
    if sample_rss is not None:

        def sample():
            while not done.wait(0.25):
                sample_rss()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    done.set()
    for c in conns:
        c.close()
    return records, wall


# -- measurements -----------------------------------------------------------------------------


def time_calls(fn, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=200,
        help="(b) requests from one client, over all rounds (default: %(default)s)",
    )
    parser.add_argument(
        "--bare_calls",
        type=int,
        default=200,
        help="(a) single-image model calls, over all rounds (default: %(default)s)",
    )
    parser.add_argument(
        "--batch_calls",
        type=int,
        default=48,
        help="(a) batch-8 model calls, over all rounds (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrent_requests",
        type=int,
        default=480,
        help="(c) requests, over all rounds (default: %(default)s)",
    )
    parser.add_argument("--clients", type=int, default=8, help="(c) clients (default: %(default)s)")
    parser.add_argument(
        "--load_requests", type=int, default=2000, help="load run requests (default: %(default)s)"
    )
    parser.add_argument(
        "--load_clients", type=int, default=16, help="load run clients (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup_requests",
        type=int,
        default=160,
        help="16-client warm-up before the memory baseline (default: %(default)s)",
    )
    parser.add_argument(
        "--max_batch",
        type=int,
        default=16,
        help="warm-up runs batch shapes 1..this once; the server's max_batch "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="interleaved rounds for (a)/(b) and (a batch-8)/(c) (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=16,
        help="server request threads, `hashtag serve --threads` (default: %(default)s)",
    )
    parser.add_argument(
        "--per_tag",
        type=int,
        default=20,
        help="synthetic training images per hashtag (default: %(default)s)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="run `python -m helpers.cli serve` untouched (no batcher counters)",
    )
    args = parser.parse_args()
    rounds = max(1, args.rounds)

    from helpers.tf import tf  # noqa: F401  (TensorFlow first, quietly)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        model_dir = train_model(tmp, args.per_tag)
        train_s = time.perf_counter() - t

        from helpers.images import decode_image
        from helpers.predict import Predictor

        jpeg_path, batch_paths, source = pick_jpeg(tmp / "sample")
        body = jpeg_path.read_bytes()
        predictor = Predictor(model_dir)
        size = predictor.input_size
        one = decode_image(body, size=size)[None]
        eight = np.stack([decode_image(p.read_bytes(), size=size) for p in batch_paths])
        if len(eight) < 8:
            eight = np.resize(eight, (8, *eight.shape[1:]))
        for _ in range(5):  # warm-up: first calls build kernels and buffers
            predictor.predict_arrays(one)
            predictor.predict_arrays(eight)
        decode_s = statistics.median(time_calls(lambda: decode_image(body, size=size), 50))

        server = Server(model_dir, args.threads, tmp / "server.log", args.plain)
        try:
            ready_s = server.wait_ready()
            results = measure(server, predictor, one, eight, body, args, rounds)
        except BaseException:
            print(f"server log (tail):\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            stop_s = server.stop()
            server_rc = server.proc.returncode

    report(
        results,
        args,
        rounds,
        source=source,
        jpeg=jpeg_path,
        body=body,
        size=size,
        train_s=train_s,
        ready_s=ready_s,
        stop_s=stop_s,
        server_rc=server_rc,
        decode_s=decode_s,
        workers=results["workers"],
    )


def measure(server: Server, predictor, one, eight, body, args, rounds) -> dict:
    port = server.port
    r: dict = {
        "workers": len(server.worker_pids()),
        "status": {},
        "batches": {},
        "rss_idle": server.worker_rss_mb(),
    }

    def count(name, records):
        codes = r["status"].setdefault(name, {})
        for status, *_ in records:
            codes[status] = codes.get(status, 0) + 1

    def batched(name, fn):
        """Run one phase; add up its model calls, images and CPU seconds (server, client)."""
        before, cpu_before = server.batcher_counts(), (server.worker_cpu_s(), time.process_time())
        out = fn()
        after, cpu_after = server.batcher_counts(), (server.worker_cpu_s(), time.process_time())
        acc = r["batches"].setdefault(name, [0, 0, 0.0, 0.0, 0])
        if before and after:
            acc[0] += after[0] - before[0]
            acc[1] += after[1] - before[1]
        acc[2] += cpu_after[0] - cpu_before[0]
        acc[3] += cpu_after[1] - cpu_before[1]
        acc[4] += len(out[0])
        return out

    # warm the server: its first requests trace and load things
    warm, _ = run_clients(port, body, 1, 20)
    count("warm-up", warm)

    # (a) single image vs (b) one client, interleaved; the ratio is the median of the
    # rounds' ratios, each from measurements seconds apart
    bare, lat, server_ms, r["b_ratios"] = [], [], [], []
    for i in range(rounds):
        bare_round = time_calls(
            lambda: predictor.predict_arrays(one), share(args.bare_calls, rounds, i)
        )
        n = share(args.requests, rounds, i)
        recs, _ = batched("b", lambda n=n: run_clients(port, body, 1, n))
        count("b", recs)
        lat_round = [s for code, s, _ in recs if code == 200]
        if lat_round:
            r["b_ratios"].append(pct(lat_round, 50) / statistics.median(bare_round))
        bare += bare_round
        lat += lat_round
        server_ms += [ms for code, _, ms in recs if code == 200 and ms is not None]
    r["a_ms"] = statistics.median(bare) * 1000
    r["b_p50_ms"], r["b_p99_ms"] = pct(lat, 50) * 1000, pct(lat, 99) * 1000
    r["b_server_p50_ms"] = statistics.median(server_ms) if server_ms else float("nan")
    r["b_n"] = len(lat)

    # (a) batch-8 throughput vs (c) concurrent clients, interleaved
    batch_s, c_rates, r["c_ratios"], r["c_lat"] = [], [], [], []
    for i in range(rounds):
        batch_round = time_calls(
            lambda: predictor.predict_arrays(eight), share(args.batch_calls, rounds, i)
        )
        n = share(args.concurrent_requests, rounds, i)
        recs, wall = batched("c", lambda n=n: run_clients(port, body, args.clients, n))
        count("c", recs)
        rate = sum(1 for code, *_ in recs if code == 200) / wall
        r["c_ratios"].append(rate / (8 / statistics.median(batch_round)))
        batch_s += batch_round
        c_rates.append(rate)
        r["c_lat"] += [s for code, s, _ in recs if code == 200]
    r["batch8_ips"] = 8 / statistics.median(batch_s)
    cpu = time.process_time()
    calls = time_calls(lambda: predictor.predict_arrays(eight), 10)
    r["batch8_cpu_ms"] = (time.process_time() - cpu) / (8 * len(calls)) * 1000
    r["curve"] = []
    for size in (1, 2, 4, 6, 8, 12, 16):
        images = np.resize(eight, (size, *eight.shape[1:]))
        predictor.predict_arrays(images)
        r["curve"].append(
            (
                size,
                size
                / statistics.median(
                    time_calls(lambda images=images: predictor.predict_arrays(images), 8)
                ),
            )
        )
    r["c_ips"] = statistics.median(c_rates)

    # load run. Warm-up first: TensorFlow and malloc keep buffers for every batch shape the
    # model has run, a one-off cost, so run each shape 1..max once (one request with k
    # images is one model call of k), then a short burst from all the load clients
    r["rss_bc"] = server.worker_rss_mb()
    for k in range(1, args.max_batch + 1):
        count("warm-up", [(post_multipart(port, body, k), 0.0, None)])
    r["rss_shapes"] = server.worker_rss_mb()
    recs, _ = run_clients(port, body, args.load_clients, args.warmup_requests)
    count("warm-up", recs)
    time.sleep(0.5)
    r["rss_before"] = server.worker_rss_mb()
    samples = [r["rss_before"]]
    recs, wall = batched(
        "load",
        lambda: run_clients(
            port,
            body,
            args.load_clients,
            args.load_requests,
            sample_rss=lambda: samples.append(server.worker_rss_mb()),
        ),
    )
    count("load", recs)
    time.sleep(0.5)
    r["rss_after"] = server.worker_rss_mb()
    r["rss_peak"] = max(samples + [r["rss_after"]])
    r["load_ips"] = sum(1 for code, *_ in recs if code == 200) / wall
    r["load_wall"] = wall
    r["load_lat"] = [s for code, s, _ in recs if code == 200]
    r["load_n"] = len(recs)
    r["server_alive"] = server.proc.poll() is None
    return r


def share(total: int, parts: int, index: int) -> int:
    """index-th of ``parts`` near-equal shares of ``total``."""
    return total // parts + (1 if index < total % parts else 0)


def report(
    r,
    args,
    rounds,
    *,
    source,
    jpeg,
    body,
    size,
    train_s,
    ready_s,
    stop_s,
    server_rc,
    decode_s,
    workers,
) -> None:
    def verdict(ok):
        return "OK" if ok else "MISSED"

    ratio_b = statistics.median(r["b_ratios"]) if r["b_ratios"] else float("nan")
    ratio_c = statistics.median(r["c_ratios"])
    status_all: dict = {}
    for codes in r["status"].values():
        for code, n in codes.items():
            status_all[code] = status_all.get(code, 0) + n
    load_codes = r["status"].get("load", {})
    load_5xx = sum(n for code, n in load_codes.items() if code >= 500)
    all_5xx = sum(n for code, n in status_all.items() if code >= 500)
    conn_errors = status_all.get(0, 0)
    growth = (r["rss_after"] - r["rss_before"]) / r["rss_before"] * 100

    print(
        f"efficientnet_lite0 model (trained on {args.per_tag} synthetic images per tag in "
        f"{train_s:.0f} s), input {size}x{size}; {os.cpu_count()} cores"
    )
    print(
        f"request body: {jpeg.name} ({source}), {len(body):,} bytes JPEG; server: "
        f"`hashtag serve --threads {args.threads}` (gunicorn gthread, {workers} worker), "
        f"ready in {ready_s:.1f} s"
    )
    print(
        f"(a)/(b) and (a batch-8)/(c) in {rounds} interleaved rounds, each ratio the median "
        "of the rounds' ratios; latencies client-side, connect excluded"
    )
    print()
    w = 54
    print(f"{'measurement':<{w}} {'value':>14}   target")
    print("-" * (w + 36))
    print(f"{'(a) bare model, 1 image, median':<{w}} {r['a_ms']:11.1f} ms")
    print(f"{'(a) bare model, batch of 8':<{w}} {r['batch8_ips']:8.1f} img/s")
    print(f"{'(b) POST /predict, 1 client, p50':<{w}} {r['b_p50_ms']:11.1f} ms")
    print(f"{'(b) POST /predict, 1 client, p99':<{w}} {r['b_p99_ms']:11.1f} ms")
    print(f"{'    ratio p50(b) / (a)':<{w}} {ratio_b:14.2f}   <= 1.5  {verdict(ratio_b <= 1.5)}")
    print(f"{'      per round':<{w}} {' '.join(f'{x:.2f}' for x in r['b_ratios'])}")
    row = f"(c) POST /predict, {args.clients} clients"
    print(f"{row:<{w}} {r['c_ips']:8.1f} img/s")
    c50, c99 = pct(r["c_lat"], 50) * 1000, pct(r["c_lat"], 99) * 1000
    print(f"{'    p50 / p99 latency':<{w}} {c50:7.0f} /{c99:5.0f} ms")
    print(
        f"{'    ratio (c) / (a batch-8)':<{w}} {ratio_c:14.2f}   >= 0.7  {verdict(ratio_c >= 0.7)}"
    )
    print(f"{'      per round':<{w}} {' '.join(f'{x:.2f}' for x in r['c_ratios'])}")
    row = f"load: {r['load_n']} requests, {args.load_clients} clients"
    print(f"{row:<{w}} {r['load_ips']:8.1f} img/s   ({r['load_wall']:.1f} s)")
    l50, l99 = pct(r["load_lat"], 50) * 1000, pct(r["load_lat"], 99) * 1000
    print(f"{'    p50 / p99 latency':<{w}} {l50:7.0f} /{l99:5.0f} ms")
    print(
        f"{'    5xx responses in the load run':<{w}} {load_5xx:14d}   == 0    {verdict(load_5xx == 0)}"
    )
    print(
        f"{'    worker RSS after warm-up -> after load (MiB)':<{w}} "
        f"{r['rss_before']:6.0f} -> {r['rss_after']:4.0f}"
    )
    row = f"    RSS growth (peak during load: {r['rss_peak']:.0f} MiB)"
    print(f"{row:<{w}} {growth:13.1f}%   < 10%   {verdict(growth < 10)}")
    print(
        f"  worker RSS on the way (MiB): idle after start {r['rss_idle']:.0f}, after (b) and (c) "
        f"{r['rss_bc']:.0f}, after batch shapes 1..{args.max_batch} {r['rss_shapes']:.0f}, "
        f"after the {args.load_clients}-client burst {r['rss_before']:.0f} (baseline)"
    )
    print()
    print("where one request's time goes, (b) p50:")
    server_ms = r["b_server_p50_ms"]
    rows = [
        (f"decode JPEG -> {size}x{size} (Pillow, timed in this process)", decode_s * 1000),
        ("bare model call, (a)", r["a_ms"]),
        (
            "batcher hand-off + top-k (server total - decode - (a))",
            server_ms - decode_s * 1000 - r["a_ms"],
        ),
        ("HTTP + gunicorn + Flask + JSON (client p50 - server total)", r["b_p50_ms"] - server_ms),
    ]
    for label, ms in rows:
        print(f"  {label:<{w + 4}} {ms:7.2f} ms")
    print(f"  {'= (b) p50':<{w + 4}} {r['b_p50_ms']:7.2f} ms")
    print()
    print("per phase: micro-batcher grouping (counted in the server) and CPU per request")
    print(
        f"  {'phase':<20} {'requests':>8} {'model calls':>11} {'images/call':>11} "
        f"{'server CPU':>10} {'client CPU':>10}"
    )
    for name, label in (
        ("b", "(b) 1 client"),
        ("c", f"(c) {args.clients} clients"),
        ("load", f"load, {args.load_clients} clients"),
    ):
        calls, images, server_cpu, client_cpu, n = r["batches"][name]
        per_call = f"{images / calls:11.2f}" if calls else f"{'n/a':>11}"
        print(
            f"  {label:<20} {n:8d} {calls if calls else 'n/a':>11} {per_call} "
            f"{server_cpu / n * 1000:7.2f} ms {client_cpu / n * 1000:7.2f} ms"
        )
    curve = "  ".join(f"{b}: {ips:.0f}" for b, ips in r["curve"])
    print(f"bare model img/s by batch size (single pass, not interleaved): {curve}")
    print(
        f"bare model CPU per image at batch 8: {r['batch8_cpu_ms']:.2f} ms "
        f"(process CPU / images, {os.cpu_count()} cores)"
    )
    print()
    codes = ", ".join(
        f"{'conn error' if c == 0 else c}: {n}" for c, n in sorted(status_all.items())
    )
    print(f"all responses: {codes}; 5xx overall: {all_5xx}; connection errors: {conn_errors}")
    print(
        f"server stopped with SIGTERM in {stop_s:.1f} s, exit code {server_rc}"
        f"{'' if r['server_alive'] else ' (it had died before the end!)'}"
    )


if __name__ == "__main__":
    main()
