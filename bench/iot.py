"""Issue 17's benchmark: AWS IoT Core on unkai.

- shadow update round trip: UpdateThingShadow through boto3, median (goal: <= 5 ms);
- MQTT publish -> topic rule -> Lambda: from the client's PUBLISH to the function's start,
  read from the feed's ``lambda.invoke`` event (its end time less its duration), median
  (goal: <= 10 ms); and MQTT publish -> a subscriber of the same broker;
- N connected MQTT clients (TLS, client certificates) publishing 10 messages/s each at
  QoS 1 for S seconds (goal: 1,000 clients, 10,000 msg/s): the load comes from separate
  generator processes (bench/iot_load.py, one per core, cheap enough to offer 10,000 msg/s);
  reported second by second: offered and acknowledged messages, the server's CPU share and
  the time its threads waited, runnable, for a CPU (a loaded machine's share), the
  generators' CPU, the load average; and PUBACK latency percentiles.

    python bench/iot.py [--quick] [--clients N] [--seconds S] [--procs 2] [--batch 1] [--drain 5] [--load-only]

``--batch B`` makes each client write B PUBLISH packets at once every B/10 s (still 10
msg/s); ``--load-only`` runs only the many-clients part and merges it into results/iot.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})


def feed(server: harness.Server, after: int, kind: str, wait: float = 10) -> list[dict]:
    url = f"{server.endpoint}/_unkai/feed?after={after}&kind={kind}&wait={wait}"
    with urllib.request.urlopen(url, timeout=wait + 10) as resp:
        return json.loads(resp.read())["events"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def certificate(iot, folder: Path) -> tuple[str, str]:
    out = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName="bench", target=out["certificateArn"])
    cert, key = folder / f"{out['certificateId'][:8]}.pem", folder / f"{out['certificateId'][:8]}.key"
    cert.write_text(out["certificatePem"])
    key.write_text(out["keyPair"]["PrivateKey"])
    return str(cert), str(key)


def paho_client(client_id: str, port: int, ca: str, cert: str, key: str):
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p=None: connected.set()
    client.connect("localhost", port)
    return client, connected


def shadow_round_trip(server: harness.Server, n: int) -> dict:
    data = boto3.client("iot-data", endpoint_url=server.endpoint, **harness.CREDS)
    i = 0

    def update() -> None:
        nonlocal i
        i += 1
        data.update_thing_shadow(thingName="bench-box", payload=json.dumps({"state": {"reported": {"n": i}}}))

    return harness.stats(harness.timed(update, n))


def publish_to_lambda(server: harness.Server, port: int, ca: str, cert: str, key: str, n: int) -> dict:
    lam = boto3.client("lambda", endpoint_url=server.endpoint, **harness.CREDS)
    iot = boto3.client("iot", endpoint_url=server.endpoint, **harness.CREDS)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return event\n")
    arn = lam.create_function(FunctionName="bench-rule", Runtime="python3.11", Role="arn:aws:iam::000000000000:role/r",
                              Handler="app.handler", Code={"ZipFile": buf.getvalue()})["FunctionArn"]
    iot.create_topic_rule(ruleName="bench_lambda", topicRulePayload={
        "sql": "SELECT * FROM 'bench/lambda'", "actions": [{"lambda": {"functionArn": arn}}]})
    client, connected = paho_client("bench-lambda", port, ca, cert, key)
    client.loop_start()
    connected.wait(10)
    last = feed(server, 0, "lambda.invoke", 0)
    after = last[-1]["id"] if last else 0
    samples = []
    for i in range(n + 5):
        sent = time.time()
        client.publish("bench/lambda", json.dumps({"i": i}), qos=1).wait_for_publish(10)
        events = feed(server, after, "lambda.invoke", 10)
        after = events[-1]["id"]
        started = events[-1]["time"] - events[-1].get("duration_ms", 0) / 1000
        if i >= 5:  # the first invocations start the function's environment
            samples.append(started - sent)
    # publish -> subscriber on the same broker
    got: queue.Queue = queue.Queue()
    client.on_message = lambda c, u, m: got.put(time.perf_counter())
    client.subscribe("bench/echo", qos=0)
    time.sleep(0.5)
    echo = []
    for _ in range(n):
        t = time.perf_counter()
        client.publish("bench/echo", b"x", qos=0)
        echo.append(got.get(timeout=10) - t)
    client.loop_stop()
    client.disconnect()
    return {"publish_to_lambda_start": harness.stats(samples), "publish_to_subscriber": harness.stats(echo)}


def _proc_cpu(pid: int) -> float | None:
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError):
        return None


def _run_queue_wait(pid: int) -> float | None:
    """Seconds the process's threads have waited, runnable, for a CPU (/proc/PID/task/*/schedstat):
    how much of a slow second is the machine's doing rather than the process's."""
    try:
        return sum(int((task / "schedstat").read_text().split()[1]) for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def _percentiles(latencies_us: list[int]) -> dict:
    s = sorted(latencies_us)
    if not s:
        return {}

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(len(s) * q))] / 1000, 2)

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "p999_ms": at(0.999),
            "max_ms": round(s[-1] / 1000, 2), "n": len(s)}


def many_clients(server: harness.Server, port: int, ca: str, cert: str, key: str, clients: int,
                 seconds: float, procs: int = 2, batch: int = 1, rate: float = 10, drain: float = 5) -> dict:
    """N TLS clients publishing RATE QoS 1 messages/s each, from PROCS generator processes
    (bench/iot_load.py): offered and acknowledged messages per second, PUBACK latency, and
    the CPU of the server and of the generators, second by second, with the load average."""
    import subprocess

    share = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    gens = []
    first = 0
    for count in share:
        gens.append(subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("iot_load.py")), "--port", str(port), "--ca", ca,
             "--cert", cert, "--key", key, "--first", str(first), "--count", str(count), "--seconds", str(seconds),
             "--batch", str(batch), "--rate", str(rate), "--drain", str(drain)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        first += count
    connect_started = time.monotonic()
    ready = [g.stdout.readline().split() for g in gens]  # type: ignore[union-attr]
    connected = sum(int(r[1]) for r in ready if len(r) == 3)
    connect_s = time.monotonic() - connect_started
    load_before = os.getloadavg()[0]
    t0 = time.monotonic() + 1.0
    for g in gens:
        g.stdin.write(f"go {t0}\n")  # type: ignore[union-attr]
        g.stdin.flush()  # type: ignore[union-attr]
    texts: list[str] = [""] * len(gens)  # read as it comes, or a full pipe would stall a generator
    readers = [threading.Thread(target=lambda i=i, g=g: texts.__setitem__(i, g.stdout.read()))  # type: ignore
               for i, g in enumerate(gens)]
    for r in readers:
        r.start()
    # the CPU of the server and of the generators, once a second from T0
    pids = [server.proc.pid] + [g.pid for g in gens]
    time.sleep(max(0.0, t0 - time.monotonic()))
    waits = [_run_queue_wait(server.proc.pid)]
    samples = [(time.monotonic(), [_proc_cpu(p) for p in pids], os.getloadavg()[0])]
    while any(g.poll() is None for g in gens):
        time.sleep(1.0 - (time.monotonic() - t0) % 1.0)
        waits.append(_run_queue_wait(server.proc.pid))
        samples.append((time.monotonic(), [_proc_cpu(p) for p in pids], os.getloadavg()[0]))
    for r in readers:
        r.join()
    outs = [json.loads(t.strip().splitlines()[-1]) for t in texts]
    per_second = []
    buckets = max(len(o["offered_per_second"]) for o in outs)
    for s in range(buckets):
        before = [(x, w) for x, w in zip(samples, waits) if x[0] - t0 <= s + 0.05]
        after = [(x, w) for x, w in zip(samples, waits) if x[0] - t0 >= s + 0.95]
        offered = sum(o["offered_per_second"][s] for o in outs if s < len(o["offered_per_second"]))
        acked = sum(o["acknowledged_per_second"][s] for o in outs if s < len(o["acknowledged_per_second"]))
        if not before or not after or not (offered or acked):
            continue
        ((ta, ca_, la), wa), ((tb, cb, lb), wb) = before[-1], after[0]
        dt = tb - ta
        waited = round((wb - wa) / dt, 3) if wa is not None and wb is not None else None

        def share_of(i: int) -> float | None:
            return round((cb[i] - ca_[i]) / dt, 3) if cb[i] is not None and ca_[i] is not None else None

        per_second.append({"second": s, "offered": offered, "acknowledged": acked, "server_cpu": share_of(0),
                           "server_waiting_for_cpu": waited,
                           "generators_cpu": round(sum(share_of(i) or 0 for i in range(1, len(pids))), 3),
                           "load_average": round(lb, 2)})
    # the steady state: the publishing seconds but the first
    steady = [row for row in per_second if 1 <= row["second"] < int(seconds)]
    offered_total = sum(o["offered"] for o in outs)
    acked_total = sum(o["acknowledged"] for o in outs)
    server_cpu = [r["server_cpu"] for r in steady if r["server_cpu"] is not None]
    server_wait = [r["server_waiting_for_cpu"] for r in steady if r["server_waiting_for_cpu"] is not None]
    gen_cpu = sum(o["cpu_seconds"] for o in outs)
    end = samples[-1]
    server_cpu_all = (end[1][0] - samples[0][1][0]) if end[1][0] is not None else None
    return {
        "clients": clients, "connected": connected, "generator_processes": procs,
        "messages_per_client_per_s": rate, "publish_packets_per_write": batch,
        "connect_seconds": round(connect_s, 1), "publish_seconds": seconds, "drain_seconds": drain,
        "offered": offered_total, "acknowledged": acked_total,
        "offered_per_s": round(offered_total / seconds, 1),
        "acknowledged_per_s_steady_median": statistics.median([r["acknowledged"] for r in steady]) if steady else None,
        "offered_per_s_steady_median": statistics.median([r["offered"] for r in steady]) if steady else None,
        "puback_latency": _percentiles([x for o in outs for x in o["latencies_us"]]),
        "server_cpu_share_steady_mean": round(statistics.fmean(server_cpu), 3) if server_cpu else None,
        "server_waiting_for_cpu_steady_mean": round(statistics.fmean(server_wait), 3) if server_wait else None,
        "server_cpu_ms_per_acknowledged": round(server_cpu_all * 1000 / acked_total, 4)
        if server_cpu_all and acked_total else None,
        "generators_cpu_seconds": round(gen_cpu, 2),
        "generators_cpu_ms_per_offered": round(gen_cpu * 1000 / offered_total, 4) if offered_total else None,
        "generators_max_behind_schedule_s": max(o["max_behind_schedule_s"] for o in outs),
        "connections_lost": sum(o["connections_lost"] for o in outs),
        "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
        "per_second": per_second,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--procs", type=int, default=2, help="load generator processes (one per core)")
    parser.add_argument("--batch", type=int, default=1, help="PUBLISH packets per write of a client")
    parser.add_argument("--rate", type=float, default=10, help="messages/s per client")
    parser.add_argument("--drain", type=float, default=5, help="seconds to wait for the last PUBACKs")
    parser.add_argument("--load-only", action="store_true",
                        help="only the many-clients run, merged into results/iot.json")
    args = parser.parse_args()
    n = 100 if args.quick else 500
    clients = args.clients or (100 if args.quick else 1000)
    seconds = args.seconds or (10 if args.quick else 30)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 1,000 clients need more descriptors
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    mqtt_port = harness.free_port()
    server = harness.start_unkai("--mqtt-port", str(mqtt_port))
    folder = Path(tempfile.mkdtemp(prefix="bench-iot-"))
    results: dict = {}
    try:
        with urllib.request.urlopen(server.endpoint + "/_unkai/iot") as resp:
            info = json.loads(resp.read())
        ca = folder / "ca.pem"
        ca.write_text(info["caPem"])
        iot = boto3.client("iot", endpoint_url=server.endpoint, **harness.CREDS)
        iot.create_policy(policyName="bench", policyDocument=ALLOW_ALL)
        cert, key = certificate(iot, folder)
        if not args.load_only:
            results["shadow_update_round_trip"] = shadow_round_trip(server, n)
            results.update(publish_to_lambda(server, mqtt_port, str(ca), cert, key, n // 5))
        name = "many_clients" if args.batch == 1 else f"many_clients_batch{args.batch}"
        results[name] = many_clients(server, mqtt_port, str(ca), cert, key, clients, seconds,
                                               procs=args.procs, batch=args.batch, rate=args.rate, drain=args.drain)
    finally:
        server.stop()
    path = harness.merge("iot", results) if args.load_only else harness.write("iot", results)
    print(json.dumps(results, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
