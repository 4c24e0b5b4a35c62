"""What the dashboard costs (issue 19's measures; reported, never asserted):

1. the flagship under the qa_pipeline load (bench/qa_pipeline.py's phase: 8 clients POSTing
   questions), once with no dashboard and once with the dashboard open: ``--tabs`` live
   Server-Sent Event streams reading every event, and the flow view rendered every 5 s
   (what a person clicking around does); the throughput cost is the difference;
2. the overview's first paint: the page's HTML, CSS and script over HTTP (median of 20),
   and first-contentful-paint in headless Chromium when it is installed;
3. the event feed's memory: RSS of a process that published 1,000,000 events
   (``lambda.invoke``-shaped) into ``unkai.feed.Feed``, against the same process before.

    python bench/dashboard.py [--seconds 20] [--clients 8] [--tabs 2]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import harness  # noqa: E402
import qa_pipeline  # noqa: E402


class Dashboard(threading.Thread):
    """An open dashboard: SSE streams read to the end, and the flow view now and then."""

    def __init__(self, port: int, tabs: int) -> None:
        super().__init__(daemon=True)
        self.port, self.tabs = port, tabs
        self.stopped = threading.Event()
        self.bytes = 0
        self.pages = 0

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_unkai/health", timeout=1):
                return True
        except OSError:
            return False

    def stream(self) -> None:
        while not self.stopped.is_set():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/_unkai/ui/events")
                resp = conn.getresponse()
                while not self.stopped.is_set():
                    chunk = resp.fp.readline()
                    if not chunk:
                        break
                    self.bytes += len(chunk)
                conn.close()
            except OSError:
                time.sleep(0.5)

    def run(self) -> None:
        while not self._ready() and not self.stopped.is_set():
            time.sleep(0.5)
        for _ in range(self.tabs):
            threading.Thread(target=self.stream, daemon=True).start()
        while not self.stopped.wait(5):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_unkai/ui/flow", timeout=30) as r:
                    r.read()
                    self.pages += 1
            except OSError:
                pass


def load_phase(clients: int, seconds: float, tabs: int) -> dict[str, Any]:
    port = harness.free_port()
    real = harness.free_port
    harness.free_port = lambda: port  # qa_pipeline.measure starts its server on this port
    watcher = Dashboard(port, tabs) if tabs else None
    if watcher:
        watcher.start()
    try:
        result = qa_pipeline.measure(clients, seconds, 300)
    finally:
        harness.free_port = real
        if watcher:
            watcher.stopped.set()
    if watcher:
        result["dashboard"] = {"tabs": tabs, "sse_bytes": watcher.bytes, "flow_pages": watcher.pages}
    return result


def first_paint() -> dict[str, Any]:
    port = harness.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = harness.Server("unkai", [
        sys.executable, "-m", "unkai", "up", str(qa_pipeline.EXAMPLE), "--ephemeral", "--port", str(port),
        "--parameter-overrides", f"TeamsWebhookUrl={endpoint}/_unkai/inbox/teams",
        "--parameter-overrides", f"BacklogUrl={endpoint}/_unkai/inbox/backlog?apiKey="], port,
        ready_path="/_unkai/health")
    try:
        deadline = time.monotonic() + 120
        while b"qa-form" not in urllib.request.urlopen(f"{endpoint}/_unkai/", timeout=30).read():
            if time.monotonic() > deadline:
                raise RuntimeError("the stack did not come up")
            time.sleep(0.5)
        samples = []
        for _ in range(20):
            started = time.perf_counter()
            for path in ("/_unkai/", "/_unkai/ui/static/dashboard.css", "/_unkai/ui/static/dashboard.js"):
                urllib.request.urlopen(endpoint + path, timeout=30).read()
            samples.append((time.perf_counter() - started) * 1000)
        out: dict[str, Any] = {"http_overview_ms": harness.stats([s / 1000 for s in samples])}
        flow = []
        for _ in range(5):
            started = time.perf_counter()
            urllib.request.urlopen(endpoint + "/_unkai/ui/flow", timeout=30).read()
            flow.append((time.perf_counter() - started) * 1000)
        out["http_flow_median_ms"] = round(statistics.median(flow), 1)
        try:
            from browser import executable
            from playwright.sync_api import sync_playwright

            path = executable()
            if path:
                with sync_playwright() as p:
                    b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--headless"], headless=True)
                    paints = []
                    for _ in range(5):
                        page = b.new_page()
                        page.goto(endpoint + "/_unkai/")
                        page.wait_for_load_state("load")
                        paint = -1
                        for _ in range(50):  # the paint entry can come just after the load event
                            paint = page.evaluate(
                                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime || -1")
                            if paint >= 0:
                                break
                            time.sleep(0.05)
                        paints.append(paint)
                        page.close()
                    b.close()
                out["chromium_first_contentful_paint_ms"] = round(statistics.median(paints), 1)
        except ImportError:
            out["chromium_first_contentful_paint_ms"] = "not measured (no Playwright)"
        return out
    finally:
        server.stop()


def feed_memory(events: int) -> dict[str, Any]:
    from unkai.clock import Clock
    from unkai.feed import Feed
    from unkai.signals import Signals

    clock = Clock()
    feed = Feed(clock, Signals(clock))
    before = harness.rss_mb(__import__("os").getpid())
    started = time.perf_counter()
    for i in range(events):
        feed.publish("lambda.invoke", function=f"qa-form-StoreFunction-{i % 7}", arn="arn:aws:lambda:us-east-1:"
                     f"000000000000:function:qa-form-StoreFunction-{i % 7}", version="$LATEST",
                     request_id=f"{i:08d}-0000-4000-8000-000000000000", status="ok", duration_ms=12.5, cold=False,
                     max_memory_mb=40, trigger="sqs qa-form-StoreQueue")
    elapsed = time.perf_counter() - started
    after = harness.rss_mb(__import__("os").getpid())
    return {"events": events, "kept": len(feed.events), "rss_before_mb": round(before, 1),
            "rss_after_mb": round(after, 1), "publish_us": round(elapsed / events * 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tabs", type=int, default=2)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    memory = feed_memory(args.events)
    paint = first_paint()
    closed = load_phase(args.clients, args.seconds, 0)
    opened = load_phase(args.clients, args.seconds, args.tabs)
    cost = 1 - opened["questions_per_s"] / closed["questions_per_s"] if closed["questions_per_s"] else None
    targets = {"throughput_cost": "<= 10%", "first_paint_ms": "<= 300", "feed": "bounded"}
    path = harness.write("dashboard", {"targets": targets, "feed_memory": memory, "first_paint": paint,
                                       "without_dashboard": closed, "with_dashboard": opened,
                                       "throughput_cost": cost})
    rows = [
        ["questions/s, no dashboard", closed["questions_per_s"], "-"],
        [f"questions/s, dashboard open ({args.tabs} live tabs)", opened["questions_per_s"], "-"],
        ["throughput cost", f"{cost * 100:.1f}%" if cost is not None else "?", targets["throughput_cost"]],
        ["overview HTML+CSS+JS over HTTP, median (ms)", paint["http_overview_ms"]["median_ms"], "-"],
        ["flow view over HTTP, median (ms)", paint["http_flow_median_ms"], "-"],
        ["overview first contentful paint, Chromium (ms)", paint.get("chromium_first_contentful_paint_ms"),
         targets["first_paint_ms"]],
        [f"feed: RSS before / after {memory['events']:,} events (MB)",
         f"{memory['rss_before_mb']} / {memory['rss_after_mb']} (keeps {memory['kept']:,})", targets["feed"]],
        ["feed: publish cost (us/event)", memory["publish_us"], "-"],
    ]
    print(harness.table(rows, ["measure", "value", "target"]))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
