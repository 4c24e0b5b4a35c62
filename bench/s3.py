"""Issue 4's benchmark: S3 put_object and get_object of 1 KiB and 10 MiB and
list_objects_v2 over 100,000 keys through boto3, against the floor, unkai, moto's
server and ministack in one run; plus unkai's memory while it receives a 1 GB upload.

    python bench/s3.py [--quick]

Needs the bench extras: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

SMALL = os.urandom(1024)
LARGE = os.urandom(10 * 1024 * 1024)
BUCKET = "bench-bucket"


class Target:
    def __init__(self, server: harness.Server, create: bool = True) -> None:
        self.server = server
        self.s3 = server.client("s3")
        if create:
            self.s3.create_bucket(Bucket=BUCKET)
            self.s3.put_object(Bucket=BUCKET, Key="small", Body=SMALL)
            self.s3.put_object(Bucket=BUCKET, Key="large", Body=LARGE)

    def put_small(self) -> None:
        self.s3.put_object(Bucket=BUCKET, Key="small", Body=SMALL)

    def get_small(self) -> None:
        assert self.s3.get_object(Bucket=BUCKET, Key="small")["Body"].read() == SMALL

    def put_large(self) -> None:
        self.s3.put_object(Bucket=BUCKET, Key="large", Body=LARGE)

    def get_large(self) -> None:
        assert len(self.s3.get_object(Bucket=BUCKET, Key="large")["Body"].read()) == len(LARGE)


def floor_for(unkai: Target) -> harness.Server:
    """The floor answers with unkai's recorded answers to the very same calls."""
    import base64
    import urllib.request

    canned = {}
    for call in (lambda c: c.put_object(Bucket=BUCKET, Key="small", Body=SMALL),
                 lambda c: c.put_object(Bucket=BUCKET, Key="large", Body=LARGE)):
        rec = harness.record(unkai.s3, call)
        canned[rec["key"]] = rec
    for key in ("small", "large"):  # a streamed answer is not recorded by boto3's events: fetch it
        path = f"/{BUCKET}/{key}"
        request = urllib.request.Request(unkai.server.endpoint + path, headers={"x-amz-checksum-mode": "ENABLED"})
        with urllib.request.urlopen(request) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()
                       if k.lower() not in ("date", "content-length", "connection", "server")}
            canned[harness.request_key("GET", path, None, None)] = {
                "status": resp.status, "headers": headers, "body": base64.b64encode(resp.read()).decode()}
    return harness.start_floor(canned)


def measure(t: Target, n_small: int, n_large: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, fn, n in (("put_1KiB", t.put_small, n_small), ("get_1KiB", t.get_small, n_small),
                        ("put_10MiB", t.put_large, n_large), ("get_10MiB", t.get_large, n_large)):
        out[name] = harness.stats(harness.timed(fn, n, warmup=min(20, n)))
        if "10MiB" in name:
            out[name]["MB_per_s"] = round(len(LARGE) / 1e6 / (out[name]["median_ms"] / 1000), 1)
    return out


def fill(t: Target, keys: int) -> float:
    """Put ``keys`` small objects (8 threads); seconds taken."""
    started = time.perf_counter()
    clients = threading.local()

    def put(i: int) -> None:
        if not hasattr(clients, "s3"):
            clients.s3 = t.server.client("s3")
        clients.s3.put_object(Bucket=BUCKET, Key=f"list/{i // 1000:03d}/{i:06d}.json", Body=b"{}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(keys)))
    return time.perf_counter() - started


def list_all(t: Target, expect: int) -> None:
    seen = 0
    for page in t.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="list/"):
        seen += page.get("KeyCount", 0)
    assert seen == expect, (t.server.name, seen)


def big_upload_rss(t: Target, size: int) -> dict[str, float]:
    """The server's RSS before, at its peak during, and after one streamed PUT of ``size`` bytes."""
    path = Path(tempfile.mkdtemp()) / "big.bin"
    with open(path, "wb") as f:
        chunk = os.urandom(1024 * 1024)
        for _ in range(size // len(chunk)):
            f.write(chunk)
    before = t.server.rss_mb()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], t.server.rss_mb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        with open(path, "rb") as f:
            t.s3.put_object(Bucket=BUCKET, Key="one-gigabyte", Body=f)
    finally:
        done.set()
        sampler.join()
        path.unlink()
    seconds = time.perf_counter() - started
    return {"rss_before_mb": round(before, 1), "rss_peak_mb": round(peak[0], 1),
            "rss_after_mb": round(t.server.rss_mb(), 1), "seconds": round(seconds, 2),
            "MB_per_s": round(size / 1e6 / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer samples, 10,000 keys, a 256 MiB upload")
    parser.add_argument("--keys", type=int, help="keys to list (default 100,000)")
    parser.add_argument("--upload-mib", type=int, help="size of the big upload (default 1024)")
    args = parser.parse_args()
    n_small, n_large = (200, 10) if args.quick else (1000, 40)
    keys = args.keys or (10_000 if args.quick else 100_000)
    upload = (args.upload_mib or (256 if args.quick else 1024)) * 1024 * 1024
    results: dict[str, Any] = {"samples_small": n_small, "samples_large": n_large, "keys": keys}

    with harness.compared(Target, lambda u: Target(floor_for(u), create=False)) as targets:
        for name, t in targets.items():
            print(f"measuring {name} ...", flush=True)
            results[name] = measure(t, n_small, n_large)
        for name, t in targets.items():
            if name == "floor":
                continue
            print(f"filling {name} with {keys:,} keys ...", flush=True)
            results[name]["fill_seconds"] = round(fill(t, keys), 1)
            samples = harness.timed(lambda t=t: list_all(t, keys), 3, warmup=1)
            results[name]["list_all_keys"] = harness.stats(samples)
        for name, t in targets.items():
            if name == "floor":
                continue
            print(f"{upload // 2**20} MiB upload to {name} ...", flush=True)
            try:
                results[name]["big_upload"] = big_upload_rss(t, upload)
            except Exception as exc:
                results[name]["big_upload"] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
        results["upload_mib"] = upload // 2**20
    path = harness.write("s3", results)
    print(report(results))
    print(f"\nwritten to {path}")


def report(r: dict[str, Any]) -> str:
    peers = [n for n in ("unkai", "moto", "ministack") if n in r]
    floor = r["floor"]
    rows = []
    for op in ("put_1KiB", "get_1KiB", "put_10MiB", "get_10MiB"):
        row = [op, _cell(floor[op])]
        for name in peers:
            row.append(_cell(r[name][op], floor[op]))
        rows.append(row)
    rows.append([f"list_objects_v2, all {r['keys']:,} keys (median s)", "",
                 *[f"{r[n]['list_all_keys']['median_ms'] / 1000:.2f}" for n in peers]])
    rows.append([f"RSS before / peak / after a {r['upload_mib']} MiB PUT (MB)", "",
                 *[_rss(r[n].get("big_upload", {})) for n in peers]])
    return harness.table(rows, ["operation (median / p99 ms)", "floor", *peers])


def _cell(m: dict[str, Any], floor: dict[str, Any] | None = None) -> str:
    text = f"{m['median_ms']} / {m['p99_ms']}"
    if "MB_per_s" in m:
        text += f", {m['MB_per_s']} MB/s"
    if floor is not None:
        text += f" ({m['median_ms'] / floor['median_ms']:.2f}x)"
    return text


def _rss(b: dict[str, Any]) -> str:
    if "error" in b:
        return "failed: " + b["error"][:60]
    return f"{b['rss_before_mb']} / {b['rss_peak_mb']} / {b['rss_after_mb']} ({b['MB_per_s']} MB/s)" if b else "n/a"


if __name__ == "__main__":
    main()
