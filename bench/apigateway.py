"""API Gateway benchmark (issue 6): an HTTP request through API Gateway to a trivial
Lambda handler and back, against a direct warm Invoke of the same function and against
ministack with the same function and API; requests/s under a load client (wrk); and
WebSocket round trips (message -> handler -> post_to_connection back to the sender)
with 1,000 connections open.

    python bench/apigateway.py            # full run, writes bench/results/apigateway.json
    python bench/apigateway.py --quick    # fewer samples
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

STACK = Path(__file__).with_name("apigateway_stack")
SIGNED = {"authorization": "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/lambda/aws4_request, "
                           "SignedHeaders=host, Signature=0", "content-type": "application/json"}


def outputs(server: harness.Server) -> dict[str, str]:
    cfn = server.client("cloudformation")
    for _ in range(200):
        stacks = cfn.describe_stacks()["Stacks"]
        if stacks and stacks[0].get("Outputs"):
            return {o["OutputKey"]: o["OutputValue"] for o in stacks[0]["Outputs"]}
        time.sleep(0.1)
    raise RuntimeError("the stack did not deploy")


def sample(client: httpx.Client, method: str, url: str, n: int, **kw: Any) -> list[float]:
    def call() -> None:
        r = client.request(method, url, **kw)
        if r.status_code != 200:
            raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:200]}")
    return harness.timed(call, n, warmup=min(200, n))


def interleaved(client: httpx.Client, kinds: dict[str, tuple[str, str, dict]], n: int) -> dict[str, list[float]]:
    """Samples of each kind of request, taken round-robin so that a busy machine's noise
    falls on all of them alike."""
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    for i in range(n + 100):
        for kind, (method, url, kw) in kinds.items():
            t = time.perf_counter()
            r = client.request(method, url, **kw)
            elapsed = time.perf_counter() - t
            if r.status_code != 200:
                raise RuntimeError(f"{kind}: {r.status_code} {r.text[:200]}")
            if i >= 100:  # warm-up
                samples[kind].append(elapsed)
    return samples


def wrk(url: str, host: str | None, seconds: int, connections: int) -> dict[str, Any] | None:
    exe = shutil.which("wrk")
    if exe is None:
        return None
    args = [exe, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if host:
        args[1:1] = ["-H", f"Host: {host}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)

    def ms(m: re.Match | None) -> float | None:
        if m is None:
            return None
        return round(float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)], 2)

    return {"requests_per_s": float(rps.group(1)) if rps else None, "non_2xx": int(errors.group(1)) if errors else 0,
            "connections": connections, "seconds": seconds, "median_ms": ms(p50), "p99_ms": ms(p99)}


async def websocket_round_trips(url: str, connections: int, rounds: int) -> dict[str, Any]:
    import websockets

    opened = time.perf_counter()
    sockets = await asyncio.gather(*[websockets.connect(url, max_queue=None) for _ in range(connections)])
    open_s = time.perf_counter() - opened
    samples: list[float] = []
    try:
        for r in range(rounds):
            for i, ws in enumerate(sockets):
                body = json.dumps({"action": "ping", "n": i, "r": r})
                t = time.perf_counter()
                await ws.send(body)
                reply = await ws.recv()
                samples.append(time.perf_counter() - t)
                if reply != body:
                    raise RuntimeError(f"unexpected reply {reply!r}")
        # and all at once: every connection sends, every reply comes back
        t = time.perf_counter()

        async def one(i: int, ws: Any) -> None:
            body = json.dumps({"action": "ping", "burst": i})
            await ws.send(body)
            await ws.recv()

        await asyncio.gather(*[one(i, ws) for i, ws in enumerate(sockets)])
        burst_s = time.perf_counter() - t
    finally:
        await asyncio.gather(*[ws.close() for ws in sockets], return_exceptions=True)
    return {"connections": connections, "open_all_s": round(open_s, 2), **harness.stats(samples),
            "burst_all_connections_s": round(burst_s, 2)}


def bench_unkai(n: int, wrk_seconds: int, ws_connections: int, ws_rounds: int) -> dict[str, Any]:
    server = harness.start_unkai(str(STACK / "template.yaml"))
    try:
        out = outputs(server)
        base = server.endpoint
        result: dict[str, Any] = {}
        http_host = f"{out['HttpApiId']}.execute-api.localhost"
        rest_host = f"{out['RestApiId']}.execute-api.localhost"
        with httpx.Client(timeout=30) as client:
            kinds = {
                "direct_invoke": ("POST", f"{base}/2015-03-31/functions/bench-hello/invocations",
                                  {"content": b"{}", "headers": SIGNED}),
                "http_api": ("GET", f"{base}/hello", {"headers": {"host": http_host}}),
                "rest_api": ("GET", f"{base}/Prod/hello", {"headers": {"host": rest_host}}),
            }
            result.update({k: harness.stats(v) for k, v in interleaved(client, kinds, n).items()})
        for api in ("http_api", "rest_api"):
            result[api]["overhead_median_ms"] = round(result[api]["median_ms"] - result["direct_invoke"]["median_ms"], 3)
        result["load_http_api"] = wrk(f"{base}/hello", http_host, wrk_seconds, 32)
        ws_url = base.replace("http://", "ws://") + f"/_unkai/execute-api/{out['SocketsId']}/live"
        result["websocket"] = asyncio.run(websocket_round_trips(ws_url, ws_connections, ws_rounds))
        result["rss_mb"] = round(server.rss_mb(), 1)
        return result
    finally:
        server.stop()


def bench_ministack(n: int) -> dict[str, Any]:
    """The same function and an HTTP API on ministack, created through its APIs."""
    try:
        server = harness.start_ministack()
    except Exception as exc:  # not installed, or it would not start
        return {"error": f"ministack did not start: {exc}"}
    try:
        lam = server.client("lambda")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.write(STACK / "src" / "app.py", "app.py")
        fn = lam.create_function(FunctionName="bench-hello", Runtime="python3.12", Handler="app.hello",
                                 Role="arn:aws:iam::000000000000:role/bench", Code={"ZipFile": buf.getvalue()})
        for _ in range(300):
            if lam.get_function(FunctionName="bench-hello")["Configuration"].get("State") in (None, "Active"):
                break
            time.sleep(0.1)
        v2 = server.client("apigatewayv2")
        api = v2.create_api(Name="bench", ProtocolType="HTTP")
        integ = v2.create_integration(ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=fn["FunctionArn"],
                                      PayloadFormatVersion="2.0")
        v2.create_route(ApiId=api["ApiId"], RouteKey="GET /hello", Target=f"integrations/{integ['IntegrationId']}")
        v2.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
        candidates = [
            (f"{server.endpoint}/hello", {"host": f"{api['ApiId']}.execute-api.localhost"}),
            (f"{server.endpoint}/hello", {"host": f"{api['ApiId']}.execute-api.localhost.localstack.cloud"}),
            (f"{server.endpoint}/_aws/execute-api/{api['ApiId']}/$default/hello", {}),
            (f"{server.endpoint}/restapis/{api['ApiId']}/$default/_user_request_/hello", {}),
        ]
        with httpx.Client(timeout=60) as client:
            for url, headers in candidates:
                try:
                    if client.get(url, headers=headers).status_code == 200:
                        samples = sample(client, "GET", url, n, headers=headers)
                        return {"http_api": harness.stats(samples), "url_form": url.replace(server.endpoint, "")
                                + (f" (Host {headers['host']})" if headers else "")}
                except httpx.HTTPError:
                    continue
        return {"error": "no execute-api URL form of ministack answered 200"}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 300 if args.quick else 2000
    unkai = bench_unkai(n, 5 if args.quick else 15, 200 if args.quick else 1000, 1 if args.quick else 3)
    ministack = bench_ministack(100 if args.quick else 300)
    data = {"unkai": unkai, "ministack": ministack}
    path = harness.write("apigateway", data)
    rows = [
        ["direct warm Invoke (the Lambda API)", f"{unkai['direct_invoke']['median_ms']} / {unkai['direct_invoke']['p99_ms']}", "-"],
        ["HTTP API -> Lambda", f"{unkai['http_api']['median_ms']} / {unkai['http_api']['p99_ms']}",
         f"{ministack['http_api']['median_ms']} / {ministack['http_api']['p99_ms']}" if "http_api" in ministack else
         ministack.get("error", "-")],
        ["REST API -> Lambda", f"{unkai['rest_api']['median_ms']} / {unkai['rest_api']['p99_ms']}", "-"],
    ]
    print(harness.table(rows, ["request (median / p99 ms)", "unkai", "ministack"]))
    print(f"API Gateway overhead over a direct Invoke (median): HTTP API {unkai['http_api']['overhead_median_ms']} ms,"
          f" REST API {unkai['rest_api']['overhead_median_ms']} ms")
    if unkai["load_http_api"]:
        print(f"wrk, HTTP API -> Lambda: {unkai['load_http_api']['requests_per_s']} requests/s "
              f"({unkai['load_http_api']['connections']} connections)")
    ws = unkai["websocket"]
    print(f"WebSocket, {ws['connections']} connections open: message -> handler -> post_to_connection back: "
          f"median {ws['median_ms']} ms, p99 {ws['p99_ms']} ms; all at once in {ws['burst_all_connections_s']} s")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
