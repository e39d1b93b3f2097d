"""Load test of ``crnn serve`` on loopback: throughput and latency with and without dynamic batching.

Starts the server twice (``--max-batch 1`` and ``--max-batch B``), or targets one running server given
with ``--url`` (127.0.0.0/8, localhost or [::1] only). N concurrent clients each send one real word crop
from ../shared/data/eval per request (multipart), for a bounded number of requests and seconds.

    python scripts/load_test.py --clients 16 --requests 600
    python scripts/load_test.py --url http://127.0.0.1:8000 --requests 200
    python scripts/load_test.py --soak 40 --requests 300

Prints throughput, p50/p99 latency, errors (must be 0: exit code 1 otherwise) and, when both
configurations ran, the speed-up of dynamic batching over batch size 1.

``--slowloris N`` opens N connections that send partial headers and a byte per second, for
``--slowloris-seconds`` and ``--slowloris-rounds`` rounds, against its own server (started with
``--header-timeout`` and ``--max-connections``) or ``--url``; it reports how many the server still holds
each second, whether normal requests are answered meanwhile, and the server's RSS.

    python scripts/load_test.py --slowloris 5000 --slowloris-seconds 30 --slowloris-rounds 3

``--soak N`` instead starts one server and measures its memory (RSS from /proc) before and after
N rounds of hostile requests from 4 clients at once (64 blank 2828x2828 PNGs in one request, a
30000x30000 PNG bomb, requests at the pixel limit), then a normal load: every hostile request must get
its 413 or 503, normal requests no error, and RSS must come back within ``--max-rss-growth-mb``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "eval"
DEFAULT_CONFIG = ROOT / "configs" / "rec" / "rec_mv3_none_bilstm_ctc.yml"


def load_crops(data: Path, n: int, seed: int) -> list[tuple[str, bytes]]:
    """``n`` random image files (name, bytes) from the eval sets under ``data``."""
    from crnn.data.images import IMAGE_EXTS

    paths = sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        sys.exit(f"error: no images under {data} (pass --data DIR)")
    return [(p.name, p.read_bytes()) for p in random.Random(seed).sample(paths, min(n, len(paths)))]


def untrained_model(out: Path) -> str:
    """A checkpoint of PaddleOCR's mv3 CRNN with random weights: speed does not depend on training."""
    import torch

    from crnn import checkpoint
    from crnn.charset import Charset
    from crnn.config import load_config
    from crnn.models import build_model

    torch.manual_seed(0)
    cfg = load_config(str(DEFAULT_CONFIG))
    charset = Charset.from_config(cfg.Global.character_dict_path, cfg.Global.use_space_char)
    model = build_model(cfg.Architecture, charset.num_classes)
    state = {"model": model.state_dict(), "config": cfg.to_dict(), "charset": charset.to_dict()}
    return str(checkpoint.save(out / "mv3_untrained.pt", state))


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = f"crnnload{random.getrandbits(64):016x}"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def check_loopback(url: str) -> tuple[str, int]:
    """(host, port) of ``url``; exits unless the host is a loopback address."""
    u = urllib.parse.urlsplit(url)
    host = u.hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if u.scheme != "http" or not ok:
        sys.exit(f"error: --url must be http:// on loopback (127.0.0.0/8, localhost, [::1]), got {url}")
    return host, u.port or 80


def run_clients(host: str, port: int, crops: list[tuple[str, bytes]], clients: int, requests: int,
                seconds: float) -> dict:
    """Send ``requests`` single-image requests from ``clients`` threads (stops early after ``seconds``)."""
    lock = threading.Lock()
    counter = iter(range(requests))
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def client(cid: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        rng = random.Random(cid)
        while time.monotonic() < deadline:
            with lock:
                if next(counter, None) is None:
                    break
            body, ctype = multipart(*rng.choice(crops))
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/recognize", body, {"Content-Type": ctype})
                resp = conn.getresponse()
                payload = resp.read()
                ok = resp.status == 200 and len(json.loads(payload)["results"]) == 1
                err = None if ok else f"HTTP {resp.status}: {payload[:200]!r}"
            except (OSError, http.client.HTTPException, ValueError) as e:
                err = f"{type(e).__name__}: {e}"
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
            dt = time.perf_counter() - t0
            with lock:
                (errors.append(err) if err else latencies.append(dt))
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    return {"requests": len(lat) + len(errors), "errors": len(errors), "first_errors": errors[:3],
            "seconds": wall, "throughput": len(lat) / wall, "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def batch_stats(host: str, port: int) -> tuple[float, float]:
    """(images, forward passes) so far, from the server's Prometheus metrics."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    total = re.search(r"^crnn_batch_size_sum ([0-9.e+]+)$", text, re.M)
    count = re.search(r"^crnn_batch_size_count ([0-9.e+]+)$", text, re.M)
    return (float(total.group(1)), float(count.group(1))) if total and count else (float("nan"), 1.0)


def measure(host: str, port: int, crops: list[tuple[str, bytes]], clients: int, requests: int,
            seconds: float) -> dict:
    """``run_clients`` plus the mean batch size the server formed meanwhile."""
    images0, passes0 = batch_stats(host, port)
    result = run_clients(host, port, crops, clients, requests, seconds)
    images1, passes1 = batch_stats(host, port)
    result["mean_batch"] = (images1 - images0) / max(1.0, passes1 - passes0)
    return result


def start_server(model: str, max_batch: int, max_wait_ms: float, threads: int, log: Path,
                 extra: tuple[str, ...] = ()) -> tuple:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "crnn", "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port),
           "--threads", str(threads), "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), *extra]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"error: server exited with {proc.returncode}; see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"error: server not ready after 60 s; see {log}")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of process ``pid`` in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def png(w: int, h: int) -> bytes:
    """A blank white w x h PNG (a few KB however large: what makes it a decompression bomb)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (w, h), 255).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def hostile_requests() -> list[tuple[str, bytes, str, set[int]]]:
    """(name, multipart body, content type, accepted statuses) of each kind of hostile request."""
    def body(parts: list[bytes]) -> tuple[bytes, str]:
        boundary = "crnnsoak"
        out = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{i}.png"\r\n'
                       f"Content-Type: image/png\r\n\r\n".encode() + p + b"\r\n" for i, p in enumerate(parts))
        return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"

    big, bomb, limit = png(2828, 2828), png(30000, 30000), png(2000, 2000)
    return [("64 blank 2828x2828 PNGs", *body([big] * 64), {413}),
            ("30000x30000 PNG bomb", *body([bomb]), {413}),
            ("4 x 2000x2000 (at the request limit)", *body([limit] * 4), {200, 503})]


def soak(model: str, crops: list[tuple[str, bytes]], rounds: int, clients: int, requests: int, threads: int,
         max_growth_mb: float, log: Path) -> dict:
    """Hostile rounds, then a normal load, against one server; RSS before and after."""
    kinds = hostile_requests()
    proc, port = start_server(model, 32, 5.0, threads, log)
    try:
        run_clients("127.0.0.1", port, crops, clients, 2 * clients, 30)  # warm-up
        before, _ = rss_mb(proc.pid)
        statuses: dict[str, dict[int, int]] = {name: {} for name, *_ in kinds}
        bad: list[str] = []
        lock = threading.Lock()

        def attacker(cid: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for r in range(rounds):
                name, data, ctype, ok = kinds[(cid + r) % len(kinds)]
                conn.request("POST", "/v1/recognize", data, {"Content-Type": ctype})
                resp = conn.getresponse()
                resp.read()
                with lock:
                    statuses[name][resp.status] = statuses[name].get(resp.status, 0) + 1
                    if resp.status not in ok:
                        bad.append(f"{name}: HTTP {resp.status}")
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.close()

        t0 = time.perf_counter()
        workers = [threading.Thread(target=attacker, args=(i,)) for i in range(4)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        hostile_s = time.perf_counter() - t0
        after_hostile, peak = rss_mb(proc.pid)
        normal = measure("127.0.0.1", port, crops, clients, requests, 60)
        after, peak = rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    result = {"rounds": rounds, "hostile_seconds": hostile_s, "statuses": statuses, "unexpected": bad[:5],
              "rss_before_mb": before, "rss_after_hostile_mb": after_hostile, "rss_after_mb": after,
              "rss_peak_mb": peak, "normal": normal, "max_growth_mb": max_growth_mb}
    print(f"hostile: {rounds} rounds x 4 clients in {hostile_s:.1f} s; statuses {statuses}")
    report("normal load after", normal)
    print(f"server RSS: before {before:.0f} MB, after hostile {after_hostile:.0f} MB, after all {after:.0f} MB, "
          f"peak {peak:.0f} MB (allowed growth {max_growth_mb:g} MB)")
    for e in bad[:5]:
        print(f"    unexpected: {e}")
    return result


def _open_partial(host: str, port: int) -> socket.socket | None:
    """A connection that sent the start of a request and never its end (a slowloris client)."""
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-slow: ")
        s.setblocking(False)
        return s
    except OSError:
        return None


def _still_open(s: socket.socket) -> bool:
    """Whether the server still holds ``s`` open (it has neither closed nor reset it)."""
    try:
        return s.recv(1024) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _probe(host: str, port: int) -> float | None:
    """Seconds a normal ``GET /healthz`` takes, or None when it is not answered within 5 s."""
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
    except OSError:
        return None
    return time.perf_counter() - t0 if ok else None


def slowloris(host: str, port: int, pid: int | None, connections: int, seconds: float, rounds: int,
              grace: float) -> dict:
    """``rounds`` attacks of ``connections`` partial-header connections, each trickling a byte per second
    for ``seconds``; reports the connections the server still held each second, whether a normal
    request was answered each second (all must be once ``grace`` seconds, the header timeout, have
    passed; before, a full connection cap refuses them too), and the server's RSS (when it is our child)
    before, at its peak and after."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, connections + 64)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    connections = min(connections, want - 64)
    before = rss_mb(pid)[0] if pid else None
    per_round = []
    for r in range(rounds):
        socks = [s for s in (_open_partial(host, port) for _ in range(connections)) if s is not None]
        held_by_second, probes = [], []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            alive = [s for s in socks if _still_open(s)]
            for s in alive:
                with contextlib.suppress(OSError):
                    s.send(b"a")  # a byte now and then: what kept uvicorn's connections open
            held_by_second.append(len(alive))
            probes.append((time.monotonic() - t0, _probe(host, port)))
            time.sleep(1.0)
        held_end = sum(_still_open(s) for s in socks)
        for s in socks:
            s.close()
        answered = [p for _, p in probes if p is not None]
        late = [p for t, p in probes if t >= grace]
        per_round.append({"opened": len(socks), "held_max": max(held_by_second, default=0), "held_end": held_end,
                          "held_by_second": held_by_second, "probes_answered": len(answered),
                          "probes": len(probes), "late_probes": len(late),
                          "late_probes_answered": sum(p is not None for p in late),
                          "probe_max_ms": 1000 * max(answered, default=float("nan"))})
        x = per_round[-1]
        print(f"round {r + 1}: opened {len(socks)}; held at most {x['held_max']}, {held_end} after {seconds:g} s; "
              f"normal requests answered {len(answered)}/{len(probes)}, {x['late_probes_answered']}/{len(late)} "
              f"after {grace:g} s (slowest {x['probe_max_ms']:.0f} ms)")
    after, peak = rss_mb(pid) if pid else (None, None)
    if pid:
        print(f"server RSS: before {before:.0f} MB, after {after:.0f} MB, peak {peak:.0f} MB")
    return {"connections": connections, "seconds": seconds, "rounds": per_round, "rss_before_mb": before,
            "rss_after_mb": after, "rss_peak_mb": peak}


def report(name: str, r: dict) -> None:
    print(f"{name:<24} {r['requests']:>6} req {r['errors']:>3} err {r['throughput']:>8.1f} req/s "
          f"p50 {r['p50_ms']:>7.1f} ms  p99 {r['p99_ms']:>7.1f} ms  mean batch {r.get('mean_batch', float('nan')):.1f}")
    for e in r["first_errors"]:
        print(f"    error: {e}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="target this running server instead of starting two (loopback only)")
    ap.add_argument("--model", help="checkpoint or .onnx to serve (default: an untrained mv3 CRNN)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of real word crops")
    ap.add_argument("--crops", type=int, default=300, help="distinct crops to sample from --data")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=600, help="requests per configuration")
    ap.add_argument("--seconds", type=float, default=60.0, help="time cap per configuration")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1, help="server inference threads")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--soak", type=int, metavar="ROUNDS", help="memory soak test: hostile rounds per client, then "
                    "--requests normal requests (starts its own server)")
    ap.add_argument("--max-rss-growth-mb", type=float, default=200.0, help="soak: allowed RSS growth")
    ap.add_argument("--slowloris", type=int, metavar="N", help="slowloris test: N connections that send partial "
                    "headers and a byte per second (1..20000); fails if any is still held at the end or normal "
                    "requests go unanswered")
    ap.add_argument("--slowloris-seconds", type=float, default=30.0, help="slowloris: seconds per round (<= 600)")
    ap.add_argument("--slowloris-rounds", type=int, default=1, help="slowloris: rounds, RSS after all (soak; <= 20)")
    ap.add_argument("--header-timeout", type=float, default=10.0, help="slowloris: the server's --header-timeout")
    ap.add_argument("--max-connections", type=int, default=1000, help="slowloris: the server's --max-connections")
    args = ap.parse_args(argv)
    if args.slowloris:
        if not (1 <= args.slowloris <= 20000 and 0 < args.slowloris_seconds <= 600
                and 1 <= args.slowloris_rounds <= 20):
            sys.exit("error: --slowloris takes 1..20000 connections, --slowloris-seconds 0..600, "
                     "--slowloris-rounds 1..20")
        with tempfile.TemporaryDirectory() as tmp:
            if args.url:
                host, port = check_loopback(args.url)
                r = slowloris(host, port, None, args.slowloris, args.slowloris_seconds, args.slowloris_rounds,
                              args.header_timeout + 2)
            else:
                model = args.model or untrained_model(Path(tmp))
                proc, port = start_server(model, args.max_batch, args.max_wait_ms, args.threads,
                                          Path(tmp) / "server.log",
                                          ("--header-timeout", str(args.header_timeout),
                                           "--max-connections", str(args.max_connections)))
                try:
                    r = slowloris("127.0.0.1", port, proc.pid, args.slowloris, args.slowloris_seconds,
                                  args.slowloris_rounds, args.header_timeout + 2)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(30)
        if args.json:
            args.json.write_text(json.dumps(r, indent=2))
        failed = any(x["held_end"] or x["late_probes_answered"] < x["late_probes"] for x in r["rounds"])
        print(f"slowloris: {'FAILED' if failed else 'ok'}")
        return 1 if failed else 0

    crops = load_crops(args.data, args.crops, seed=0)
    print(f"{len(crops)} crops from {args.data}; {args.clients} clients; {args.requests} requests "
          f"(cap {args.seconds:g} s) per configuration")
    results: dict[str, dict] = {}
    if args.soak:
        if not 1 <= args.soak <= 1000:
            sys.exit("error: --soak takes 1..1000 rounds")
        with tempfile.TemporaryDirectory() as tmp:
            model = args.model or untrained_model(Path(tmp))
            r = soak(model, crops, args.soak, args.clients, args.requests, args.threads, args.max_rss_growth_mb,
                     Path(tmp) / "server.log")
        if args.json:
            args.json.write_text(json.dumps(r, indent=2))
        grew = r["rss_after_mb"] - r["rss_before_mb"]
        failed = bool(r["unexpected"]) or r["normal"]["errors"] > 0 or grew > args.max_rss_growth_mb
        print(f"soak: RSS grew {grew:+.0f} MB; {'FAILED' if failed else 'ok'}")
        return 1 if failed else 0
    if args.url:
        host, port = check_loopback(args.url)
        results["target"] = measure(host, port, crops, args.clients, args.requests, args.seconds)
        report(args.url, results["target"])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model = args.model or untrained_model(Path(tmp))
            configs = {"batch=1": (1, 0.0), f"dynamic batch<={args.max_batch}": (args.max_batch, args.max_wait_ms)}
            for name, (max_batch, wait) in configs.items():
                proc, port = start_server(model, max_batch, wait, args.threads, Path(tmp) / "server.log")
                try:
                    run_clients("127.0.0.1", port, crops, args.clients, 2 * args.clients, 30)  # warm-up
                    results[name] = measure("127.0.0.1", port, crops, args.clients, args.requests, args.seconds)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(30)
                report(name, results[name])
        one, dyn = results.values()
        print(f"speed-up of dynamic batching over batch size 1: {dyn['throughput'] / one['throughput']:.2f}x "
              f"throughput, p50 latency {one['p50_ms'] / dyn['p50_ms']:.2f}x lower")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    errors = sum(r["errors"] for r in results.values())
    print(f"errors: {errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
