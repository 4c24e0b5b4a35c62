"""The flagship under load: examples/qa-form, 8 clients POSTing questions for 30 s.

A question counts as fully processed when all of its side effects happened: the Teams
card and the Backlog issue are in the webhook inbox, and the instructor's WebSocket got
the row (pushed from the table's stream, so the DynamoDB write happened too). Latency
runs from the POST's start to the last of those. RSS is sampled every 100 ms for the
server process; PSS for it with its Lambda workers (the whole process tree). Each phase
starts a fresh server and first sends one warm-up question per client, not measured.

    python bench/qa_pipeline.py [--seconds 30] [--clients 8]
    python bench/qa_pipeline.py --before DIR [--rounds 4] [--seconds 10]   # before/after, interleaved
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "qa-form"


def local(url: str, endpoint: str) -> str:
    """An ``ID.execute-api.localhost`` URL in its path form on the server's address."""
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    if ".execute-api." not in host:  # already the path form on unkai's address (outputs are, since 1f54ad8)
        return url
    api_id = host.split(".", 1)[0]
    base = endpoint if scheme.startswith("http") else endpoint.replace("http://", "ws://")
    return f"{base}/_unkai/execute-api/{api_id}/{path}"


def cpu_seconds(root: int) -> tuple[float, float]:
    """CPU time used so far by ``root`` itself and by its descendants (live ones, and reaped ones)."""
    tick = os.sysconf("SC_CLK_TCK")

    def times(pid: int) -> list[int]:
        try:
            return [int(x) for x in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:15]]
        except (OSError, ValueError):
            return [0, 0, 0, 0]

    own = times(root)
    workers = own[2] + own[3]
    for pid in descendants(root):
        utime, stime, cutime, cstime = times(pid)
        workers += utime + stime + cutime + cstime
    return (own[0] + own[1]) / tick, workers / tick


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, stack = [], list(children.get(root, []))
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def tree_rss_mb(root: int) -> tuple[float, float]:
    """RSS of ``root`` alone, and the PSS of it with every descendant (its Lambda workers)."""
    total = 0.0
    for pid in [root, *descendants(root)]:
        pss = harness.pss_mb(pid)
        if pss == pss:  # not NaN: the process still exists
            total += pss
    return harness.rss_mb(root), total


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_server, self.peak_tree = pid, 0.0, 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            server, tree = tree_rss_mb(self.pid)
            self.peak_server, self.peak_tree = max(self.peak_server, server), max(self.peak_tree, tree)


def epoch(iso: str) -> float:
    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


async def run(endpoint: str, out: dict[str, str], seconds: float, clients: int, drain_timeout: float,
              prefix: str = "") -> dict[str, Any]:
    question_url = local(out["QuestionApiUrl"], endpoint)
    posted: dict[str, float] = {}
    pushed: dict[str, float] = {}
    errors = 0

    async def instructor(ws: Any) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "question":
                pushed[message["question"]["project_id"]] = time.time()

    async def client(n: int, http: httpx.AsyncClient, stop_at: float) -> None:
        nonlocal errors
        seq = 0
        while time.monotonic() < stop_at:
            tag = f"B{prefix}{n}-{seq}"
            seq += 1
            query = urllib.parse.urlencode({"project_id": tag, "contact_detail": f"q-{tag}newlineload test"})
            posted[tag] = time.time()
            response = await http.post(f"{question_url}?{query}")
            if response.status_code != 200:
                errors += 1
                del posted[tag]

    async with websockets.connect(local(out["LiveUrl"], endpoint), max_queue=None) as ws:
        listener = asyncio.create_task(instructor(ws))
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            async def counts() -> dict[str, int]:
                return {b["name"]: b["count"] for b in (await http.get(f"{endpoint}/_unkai/inbox")).json()}

            # Warm-up, not measured: a round of questions from every client, all the way through.
            for n in range(clients):
                query = urllib.parse.urlencode({"project_id": f"W{prefix}{n}",
                                                "contact_detail": f"q-W{prefix}{n}newlinewarm-up"})
                await http.post(f"{question_url}?{query}")
            deadline = time.monotonic() + drain_timeout
            while time.monotonic() < deadline:
                seen = await counts()
                if min(seen.get("teams", 0), seen.get("backlog", 0), len(pushed)) >= clients:
                    break
                await asyncio.sleep(0.1)
            pushed.clear()
            base = await counts()

            started = time.monotonic()
            stop_at = started + seconds
            await asyncio.gather(*(client(n, http, stop_at) for n in range(clients)))
            posting_s = time.monotonic() - started

            # Wait (bounded) until every question has all of its side effects.
            deadline = time.monotonic() + drain_timeout
            while time.monotonic() < deadline:
                seen = await counts()
                if min(seen.get("teams", 0) - base.get("teams", 0), seen.get("backlog", 0) - base.get("backlog", 0),
                       len(pushed)) >= len(posted):
                    break
                await asyncio.sleep(0.25)
            teams = (await http.get(f"{endpoint}/_unkai/inbox/teams")).json()
            backlog = (await http.get(f"{endpoint}/_unkai/inbox/backlog")).json()
        listener.cancel()

    done_at: dict[str, list[float]] = {}
    for entry in teams:
        done_at.setdefault(entry["json"]["text"].rsplit("  ", 1)[1], []).append(epoch(entry["received_at"]))
    for entry in backlog:
        done_at.setdefault(entry["json"]["description"].split("\n", 1)[0][2:], []).append(epoch(entry["received_at"]))
    latencies, last = [], 0.0
    for tag, start in posted.items():
        effects = done_at.get(tag, [])
        if len(effects) == 2 and tag in pushed:  # (warm-up questions are not in posted)
            finished = max(*effects, pushed[tag])
            latencies.append(finished - start)
            last = max(last, finished)
    first = min(posted.values()) if posted else 0.0
    complete = len(latencies)
    return {
        "clients": clients, "posting_s": round(posting_s, 2), "questions_posted": len(posted),
        "post_errors": errors, "questions_fully_processed": complete,
        "questions_per_s": round(complete / (last - first), 1) if complete else 0.0,
        "posts_per_s": round(len(posted) / posting_s, 1),
        "latency": harness.stats(latencies) if latencies else None,
    }


def start_stack(command: list[str] | None = None) -> tuple[harness.Server, str, dict[str, str]]:
    """``unkai up examples/qa-form`` (``command``: another unkai's) on a free port, once the stack is applied."""
    port = harness.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = harness.Server("unkai", [
        *(command or harness.unkai_command()), "up", str(EXAMPLE), "--ephemeral", "--port", str(port),
        "--parameter-overrides", f"TeamsWebhookUrl={endpoint}/_unkai/inbox/teams",
        "--parameter-overrides", f"BacklogUrl={endpoint}/_unkai/inbox/backlog?apiKey=",
    ], port, ready_path="/_unkai/health")
    deadline = time.monotonic() + 120
    while True:  # the health check may answer before the stack is applied
        try:
            stacks = server.client("cloudformation").describe_stacks(StackName="qa-form")["Stacks"]
            if stacks[0]["StackStatus"].endswith("_COMPLETE"):
                break
        except Exception:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("the qa-form stack did not come up")
        time.sleep(0.2)
    return server, endpoint, {o["OutputKey"]: o["OutputValue"] for o in stacks[0]["Outputs"]}


def measure(clients: int, seconds: float, drain_timeout: float) -> dict[str, Any]:
    """One load phase against a fresh ``unkai up examples/qa-form``."""
    server, endpoint, out = start_stack()
    try:
        idle_server, idle_tree = tree_rss_mb(server.proc.pid)
        sampler = RssSampler(server.proc.pid)
        sampler.start()
        cpu_before = cpu_seconds(server.proc.pid)
        result = asyncio.run(run(endpoint, out, seconds, clients, drain_timeout))
        cpu_after = cpu_seconds(server.proc.pid)
        done = max(result["questions_fully_processed"], 1)
        result["cpu_ms_per_question"] = {
            "server": round((cpu_after[0] - cpu_before[0]) * 1000 / done, 2),
            "lambda_workers": round((cpu_after[1] - cpu_before[1]) * 1000 / done, 2)}
        sampler.stopped.set()
        sampler.join()
        result["rss_mb"] = {"idle_server": round(idle_server, 1), "idle_with_workers": round(idle_tree, 1),
                            "peak_server": round(sampler.peak_server, 1),
                            "peak_with_workers": round(sampler.peak_tree, 1)}
        return result
    finally:
        server.stop()


def interleaved(before_src: str, clients: int, seconds: float, rounds: int, drain_timeout: float) -> dict[str, Any]:
    """Before/after on a shared, noisy machine: an older unkai (``before_src``, unpacked with
    ``git archive``) and this one both serve the stack at once, and take turns at short load
    phases, so the machine's load swings hit both alike. Per phase: the server's CPU and the
    workers' CPU per fully processed question, and questions/s; medians over the rounds."""
    import statistics

    older = [sys.executable, "-c", harness._FROM_SRC.format(src=before_src)]
    sides = {"before": start_stack(older), "after": start_stack()}
    phases: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    try:
        for n in range(rounds):
            for label in (("before", "after") if n % 2 == 0 else ("after", "before")):
                server, endpoint, out = sides[label]
                cpu0 = cpu_seconds(server.proc.pid)
                r = asyncio.run(run(endpoint, out, seconds, clients, drain_timeout, prefix=f"{label[0]}{n}x"))
                cpu1 = cpu_seconds(server.proc.pid)
                done = max(r["questions_fully_processed"], 1)
                phases[label].append({"server_ms": (cpu1[0] - cpu0[0]) * 1000 / done,
                                      "workers_ms": (cpu1[1] - cpu0[1]) * 1000 / done,
                                      "questions_per_s": r["questions_per_s"], "done": done})
                print(label, n, {k: round(v, 2) for k, v in phases[label][-1].items()}, flush=True)
        peaks = {label: tree_rss_mb(sides[label][0].proc.pid) for label in sides}
    finally:
        for server, _, _ in sides.values():
            server.stop()
    result: dict[str, Any] = {"clients": clients, "seconds_per_phase": seconds, "rounds": rounds, "phases": phases}
    for label, rows in phases.items():
        med = {k: round(statistics.median(row[k] for row in rows), 2) for k in ("server_ms", "workers_ms",
                                                                                  "questions_per_s")}
        med["handler_limit_questions_per_s"] = round((os.cpu_count() or 1) * 1000 / max(med["workers_ms"], 0.01), 1)
        med["server_rss_mb_after"], med["pss_with_workers_mb_after"] = (round(x, 1) for x in peaks[label])
        result[label] = med
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--out", default="qa_pipeline", help="results file name (bench/results/NAME.json)")
    parser.add_argument("--loaded-only", action="store_true", help="skip the one-client phase")
    parser.add_argument("--before", metavar="DIR", help="interleave with the unkai unpacked in DIR (git archive): "
                        "both serve the stack at once and take turns at --seconds phases, --rounds times")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    load = [os.getloadavg()]
    if args.before:
        found = interleaved(args.before, args.clients, args.seconds, args.rounds, args.drain_timeout)
        load.append(os.getloadavg())
        path = harness.write(args.out, {"load_average": load, "interleaved": found})
        print(harness.table([[label, found[label]["server_ms"], found[label]["workers_ms"],
                              found[label]["questions_per_s"], found[label]["handler_limit_questions_per_s"]]
                             for label in ("before", "after")],
                            ["unkai", "server CPU ms/question", "workers CPU ms/question", "questions/s",
                             "handler limit q/s"]))
        print(f"medians of {args.rounds} rounds of {args.seconds} s; load average {load[0]} .. {load[-1]}; "
              f"written to {path}")
        return

    # The load (8 clients, closed loop), then one client alone: the latency of a
    # question when the pipeline is not queueing behind others.
    loaded = measure(args.clients, args.seconds, args.drain_timeout)
    load.append(os.getloadavg())
    single = loaded if args.loaded_only else measure(1, min(args.seconds, 10), args.drain_timeout)
    load.append(os.getloadavg())
    for r in (loaded, single):
        # The handlers' own CPU bounds throughput whatever the server does: cores / worker CPU per question.
        cpu = r["cpu_ms_per_question"]
        r["handler_limit_questions_per_s"] = round((os.cpu_count() or 1) * 1000 / max(cpu["lambda_workers"], 0.01), 1)
        r["share_of_handler_limit"] = round(r["questions_per_s"] / r["handler_limit_questions_per_s"], 3)
    targets = {"questions_per_s": ">= 500", "p50_ms": "<= 50", "p99_ms": "<= 250", "rss_mb": "<= 250",
               "server_cpu_ms_per_question": "<= 2", "share_of_handler_limit": ">= 0.8"}
    commit = os.popen(f"git -C {EXAMPLE} rev-parse --short HEAD").read().strip()
    path = harness.write(args.out, {"targets": targets, "commit": commit, "src": os.environ.get("UNKAI_BENCH_SRC", ""),
                                    "load_average": load, "unkai": loaded, "unkai_one_client": single})
    lat, one = loaded["latency"] or {}, single["latency"] or {}
    rows = [
        ["questions/s fully processed", loaded["questions_per_s"], single["questions_per_s"], targets["questions_per_s"]],
        ["POST -> last side effect, p50 (ms)", lat.get("median_ms"), one.get("median_ms"), targets["p50_ms"]],
        ["POST -> last side effect, p99 (ms)", lat.get("p99_ms"), one.get("p99_ms"), targets["p99_ms"]],
        ["peak RSS, server process (MB)", loaded["rss_mb"]["peak_server"], single["rss_mb"]["peak_server"],
         targets["rss_mb"]],
        ["peak PSS, server + Lambda workers (MB)", loaded["rss_mb"]["peak_with_workers"],
         single["rss_mb"]["peak_with_workers"], "-"],
        ["CPU per question: server / workers (ms)",
         f"{loaded['cpu_ms_per_question']['server']} / {loaded['cpu_ms_per_question']['lambda_workers']}",
         f"{single['cpu_ms_per_question']['server']} / {single['cpu_ms_per_question']['lambda_workers']}",
         "server <= 2"],
        ["limit set by the handlers' CPU (questions/s) / share reached",
         f"{loaded['handler_limit_questions_per_s']} / {loaded['share_of_handler_limit']:.0%}",
         f"{single['handler_limit_questions_per_s']} / {single['share_of_handler_limit']:.0%}", ">= 80%"],
    ]
    print(harness.table(rows, ["measure", f"unkai, {args.clients} clients", "unkai, 1 client", "target"]))
    for label, r in ((f"{args.clients} clients", loaded), ("1 client", single)):
        print(f"{label}: {r['questions_posted']} questions posted in {r['posting_s']} s ({r['posts_per_s']}/s "
              f"accepted), {r['questions_fully_processed']} fully processed, {r['post_errors']} POST errors")
    print(f"on {os.cpu_count()} cores, load average {load[0]} .. {load[-1]}; written to {path}")


if __name__ == "__main__":
    main()
