"""Server CPU instructions per operation, counted by valgrind's callgrind: steadier than
wall time on a shared, loaded machine, but not steady (see below).

    python bench/callgrind.py [--n 30] [--src DIR] [--peers [--peer-n 5] [--no-unkai]] [--out NAME]

Each server runs under ``valgrind --tool=callgrind --instr-atstart=no``; once its
resources exist and each operation has been warmed, instrumentation is switched on,
and for each operation the counters are zeroed, N calls are made through boto3 and
the counters dumped; then again with 2N calls. (2N - N) / N cancels the fixed cost of
switching and dumping; the least of ``--repeats`` (3) such measurements is kept.
Under valgrind a call takes ~50x longer, so the server's timers and background loops
run ~50x more often per call and are counted with it: the same code measured twice
moved by up to ±15%. ``--src DIR`` runs the unkai found in DIR (e.g. an older commit
unpacked with ``git archive``) instead of the installed one, for before/after.
``--peers`` also counts moto's server and ministack (fewer calls: a moto call costs
about 50x an unkai one under valgrind).
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

BODY = "bench-message-0123456789"
KIB = b"x" * 1024

_FROM_SRC = harness._FROM_SRC


def _client(name: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(name, endpoint_url=endpoint, config=Config(retries={"max_attempts": 0}), **harness.CREDS)


class _Switch:
    """A client whose calls go to whichever endpoint ``Ops.point`` names (bench/ratios.py
    replays unkai's recorded answers from the floor through the very same calls)."""

    def __init__(self, name: str, endpoint: str) -> None:
        self.name = name
        self.clients = {endpoint: _client(name, endpoint)}
        self.target = self.clients[endpoint]

    def point(self, endpoint: str) -> None:
        if endpoint not in self.clients:
            self.clients[endpoint] = _client(self.name, endpoint)
        self.target = self.clients[endpoint]

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.target, attr)


class Ops:
    """The resources and the calls measured, made through one target's own API."""

    def __init__(self, endpoint: str, services: tuple[str, ...]) -> None:
        self.switches: list[_Switch] = []

        def client(name: str) -> Any:
            switch = _Switch(name, endpoint)
            self.switches.append(switch)
            return switch

        self.calls: dict[str, Callable[[], Any]] = {}
        if "sqs" in services:
            sqs = self.sqs = client("sqs")
            self.url = sqs.create_queue(QueueName="cg")["QueueUrl"]
            self.calls["sqs send_message"] = lambda: sqs.send_message(QueueUrl=self.url, MessageBody=BODY)
            self.calls["sqs receive+delete"] = self.receive_delete
        if "sns" in services:
            sns = client("sns")
            topic = sns.create_topic(Name="cg-topic")["TopicArn"]
            self.fan = []
            for i in range(3):
                url = self.sqs.create_queue(QueueName=f"cg-fan-{i}")["QueueUrl"]
                self.fan.append(url)
                arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
            self.calls["sns publish (3 SQS)"] = lambda: sns.publish(TopicArn=topic, Message=BODY, Subject="cg")
        if "dynamodb" in services:
            ddb = client("dynamodb")
            ddb.create_table(TableName="cg-table", BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                   {"AttributeName": "sk", "AttributeType": "N"}],
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                        {"AttributeName": "sk", "KeyType": "RANGE"}])
            for i in range(10):
                ddb.put_item(TableName="cg-table", Item={"pk": {"S": "q"}, "sk": {"N": str(i)}, "v": {"S": BODY}})
            self.calls["dynamodb put_item"] = lambda: ddb.put_item(
                TableName="cg-table", Item={"pk": {"S": "p"}, "sk": {"N": "1"}, "v": {"S": BODY}, "n": {"N": "42"}})
            self.calls["dynamodb get_item"] = lambda: ddb.get_item(
                TableName="cg-table", Key={"pk": {"S": "p"}, "sk": {"N": "1"}})
            self.calls["dynamodb query (10 items)"] = lambda: ddb.query(
                TableName="cg-table", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "q"}})
        if "s3" in services:
            s3 = client("s3")
            s3.create_bucket(Bucket="cg-bucket")
            self.calls["s3 put_object 1 KiB"] = lambda: s3.put_object(Bucket="cg-bucket", Key="k", Body=KIB)
            self.calls["s3 get_object 1 KiB"] = lambda: s3.get_object(Bucket="cg-bucket", Key="k")["Body"].read()
        if "sts" in services:
            sts = client("sts")
            self.calls["sts get_caller_identity"] = lambda: sts.get_caller_identity()
        if "secretsmanager" in services:
            sm = client("secretsmanager")
            sm.create_secret(Name="cg/db", SecretString="s3cret-value")
            self.calls["secretsmanager get_secret_value"] = lambda: sm.get_secret_value(SecretId="cg/db")
        if "kms" in services:
            kms = client("kms")
            key = kms.create_key()["KeyMetadata"]["KeyId"]
            blob = kms.encrypt(KeyId=key, Plaintext=b"x" * 64)["CiphertextBlob"]
            self.calls["kms describe_key"] = lambda: kms.describe_key(KeyId=key)
            self.calls["kms encrypt 64 B"] = lambda: kms.encrypt(KeyId=key, Plaintext=b"x" * 64)
            self.calls["kms decrypt 64 B"] = lambda: kms.decrypt(CiphertextBlob=blob)

        if "ses" in services:  # issue 13's SendEmail: a verified domain, to the mailbox simulator
            import urllib.request

            ses = client("ses")
            ses.verify_domain_identity(Domain="cg.example")
            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/_unkai/clock/advance?seconds=61", data=b"",
                                                          method="POST"), timeout=600).read()
            message = {"Subject": {"Data": "cg"}, "Body": {"Text": {"Data": BODY}}}
            self.calls["ses send_email"] = lambda: ses.send_email(
                Source="cg@cg.example", Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                Message=message)

        if "cloudwatch" in services:  # issue 16's PutMetricData / GetMetricData (bench/observability.py's calls)
            import time

            cw, now = client("cloudwatch"), time.time()
            metric = {"Namespace": "Bench/App", "MetricName": "Latency", "Dimensions": [{"Name": "Api", "Value": "orders"}]}
            datum = [{"MetricName": "Latency", "Dimensions": metric["Dimensions"], "Value": 12.5, "Unit": "Milliseconds"}]
            for _ in range(200):  # a metric with data, as the bench has when it reads
                cw.put_metric_data(Namespace="Bench/App", MetricData=datum)
            self.calls["cloudwatch put_metric_data"] = lambda: cw.put_metric_data(Namespace="Bench/App",
                                                                                  MetricData=datum)
            # an hour that ends in whole minutes after every put: what it costs does not hang on
            # how many puts happened to fall in a partial minute at its end
            self.calls["cloudwatch get_metric_data"] = lambda: cw.get_metric_data(
                StartTime=now - 3600, EndTime=now + 600,
                MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Average"}}])

        if "events" in services:  # issue 23's PutEvents: 10 entries, a bus with 100 rules, one SQS target each
            import json

            events, esqs = client("events"), client("sqs")
            events.create_event_bus(Name="cg-bus")
            url = esqs.create_queue(QueueName="cg-events")["QueueUrl"]
            arn = esqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for i in range(100):
                events.put_rule(Name=f"r{i}", EventBusName="cg-bus", EventPattern=json.dumps(
                    {"source": [f"src{i}"], "detail": {"n": [{"numeric": [">=", 0]}]}}))
                events.put_targets(Rule=f"r{i}", EventBusName="cg-bus", Targets=[{"Id": "q", "Arn": arn}])
            entries = [{"Source": f"src{i * 7}", "DetailType": "t", "Detail": json.dumps({"n": i}),
                        "EventBusName": "cg-bus"} for i in range(10)]
            self.calls["events put_events (10 entries, 100 rules)"] = lambda: events.put_events(Entries=entries)

        if "lambda" in services:  # the server's share of an invocation (the worker runs natively, not counted)
            import io
            import json
            import time
            import urllib.request
            import zipfile

            lam, lsqs = client("lambda"), client("sqs")
            code = io.BytesIO()
            with zipfile.ZipFile(code, "w") as z:
                z.writestr("app.py", "def handler(event, context):\n    return {'n': len(event.get('Records', []))}\n")
            for name in ("cg-fn", "cg-mapped"):
                lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::000000000000:role/cg",
                                    Handler="app.handler", Code={"ZipFile": code.getvalue()}, Timeout=20)
            for _ in range(600):  # until the functions are Active
                if lam.get_function(FunctionName="cg-mapped")["Configuration"].get("State") == "Active":
                    break
                time.sleep(0.1)
            murl = lsqs.create_queue(QueueName="cg-mapped")["QueueUrl"]
            marn = lsqs.get_queue_attributes(QueueUrl=murl, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            lam.create_event_source_mapping(EventSourceArn=marn, FunctionName="cg-mapped", BatchSize=1)

            def drain() -> None:
                req = urllib.request.Request(f"{endpoint}/_unkai/drain?timeout=120", data=b"", method="POST")
                urllib.request.urlopen(req, timeout=130).read()

            def mapped() -> None:
                lsqs.send_message(QueueUrl=murl, MessageBody=BODY)
                drain()

            self.calls["lambda invoke (RequestResponse)"] = lambda: lam.invoke(FunctionName="cg-fn", Payload=b"{}")
            self.calls["sqs send -> mapped lambda (+ drain)"] = mapped

    def point(self, endpoint: str) -> None:
        """Make every call go to ``endpoint`` from now on."""
        for switch in self.switches:
            switch.point(endpoint)

    def clients(self) -> list[Any]:
        """The clients the calls go through now."""
        return [switch.target for switch in self.switches]

    def receive_delete(self) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=BODY)  # not measured: see measure()
        msgs = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1).get("Messages")
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=msgs[0]["ReceiptHandle"])


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=600)


def _total(out_dir: str, pid: int) -> int:
    """The instruction count of the newest dump of ``pid``."""
    files = sorted(glob.glob(f"{out_dir}/cg.{pid}.*"), key=os.path.getmtime)
    for line in Path(files[-1]).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {files[-1]}")


def _idle_rate(pid: int, out_dir: str, seconds: float) -> float:
    """Instructions per second the server spends with no request (timers, background loops)."""
    import time

    _control(pid, "-z")
    started = time.monotonic()
    time.sleep(seconds)
    _control(pid, "-d")
    return _total(out_dir, pid) / (time.monotonic() - started)


def count(name: str, argv: list[str], ready: str, services: tuple[str, ...], n: int,
          env: dict[str, str] | None = None, cwd: str | None = None, repeats: int = 3,
          idle: float = 0.0) -> dict[str, int]:
    """Instructions per call of each operation for one server. With ``idle`` seconds, the
    server's background rate is measured that long (with no request) before each operation
    and subtracted for the time each batch of calls took: under valgrind a call lasts ~50x
    longer and a loaded machine stretches it further, so the background work that falls in
    a batch varies with the load, not with the code."""
    import time

    out_dir = tempfile.mkdtemp(prefix=f"cg-{name}-")
    port = harness.free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    env = {k: v.replace("{port}", str(port)) for k, v in (env or {}).items()}
    vg = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_dir}/cg.%p"]
    print(f"starting {name} under callgrind ...", flush=True)
    server = harness.Server(name, vg + argv, port, env=env, ready_path=ready, cwd=cwd, timeout=600)
    try:
        ops = Ops(server.endpoint, services)
        for call in ops.calls.values():
            for _ in range(5):
                call()
        _control(server.proc.pid, "-i", "on")
        result = {}
        for op, call in ops.calls.items():
            if op == "sqs receive+delete":  # the sends that refill the queue are not counted
                call = _receive_delete_only(ops)
            per_call = []
            rate = _idle_rate(server.proc.pid, out_dir, idle) if idle else 0.0
            for _ in range(repeats):
                counts = []
                for reps in (n, 2 * n):
                    prepare = getattr(call, "prepare", None)
                    if prepare:
                        prepare(reps)
                    _control(server.proc.pid, "-z")
                    started = time.monotonic()
                    for _ in range(reps):
                        call()
                    _control(server.proc.pid, "-d")
                    elapsed = time.monotonic() - started
                    counts.append(_total(out_dir, server.proc.pid) - rate * elapsed)
                per_call.append((counts[1] - counts[0]) / n)
            # the least of the repeats: the server's timers and background tasks run meanwhile,
            # and a garbage collection may fall in either half; the minimum is the steadiest
            result[op] = round(min(per_call))
            print(f"  {name} {op}: {result[op]:,} instructions", flush=True)
        return result
    finally:
        server.stop()


def _receive_delete_only(ops: Ops) -> Callable[[], None]:
    sqs, url = ops.sqs, ops.url

    def call() -> None:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages")
        sqs.delete_message(QueueUrl=url, ReceiptHandle=msgs[0]["ReceiptHandle"])

    def prepare(reps: int) -> None:  # fill the queue first, with instrumentation on but before the zeroing
        for start in range(0, reps, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": BODY}
                                                          for i in range(start, min(reps, start + 10))])

    call.prepare = prepare  # type: ignore[attr-defined]
    return call


SERVICES = ("sqs", "sns", "dynamodb", "s3")
EXTRA = ("sts", "secretsmanager", "kms", "cloudwatch", "events", "ses")
ALL = SERVICES + EXTRA


def _cpu_ns(pid: int) -> int:
    """Nanoseconds on CPU of every thread of ``pid`` (schedstat: finer than /proc's 10 ms ticks)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(Path(path).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu(servers: dict[str, harness.Server], services: tuple[str, ...], n: int, repeats: int) -> dict[str, dict]:
    """Server CPU microseconds per call of each operation, for servers measured in turns
    (each repeat of each operation runs on every server before the next), least of ``repeats``."""
    ops = {name: Ops(server.endpoint, services) for name, server in servers.items()}
    per: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
    first = next(iter(ops.values()))
    for op in first.calls:
        for _ in range(repeats):
            for name, server in servers.items():
                call = ops[name].calls[op]
                if op == "sqs receive+delete":
                    call = _receive_delete_only(ops[name])
                    call.prepare(n + 5)  # type: ignore[attr-defined]
                for _ in range(5):
                    call()
                before = _cpu_ns(server.proc.pid)
                for _ in range(n):
                    call()
                per[name].setdefault(op, []).append((_cpu_ns(server.proc.pid) - before) / n / 1000)
        print("  " + op + ": " + ", ".join(f"{name} {min(per[name][op]):.0f} us" for name in servers), flush=True)
    return {name: {op: round(min(v), 1) for op, v in found.items()} for name, found in per.items()}


def unkai_argv(src: str | None) -> list[str]:
    head = [sys.executable, "-c", _FROM_SRC.format(src=src)] if src else [sys.executable, "-m", "unkai"]
    return head + ["up", "--ephemeral", "--port", "{port}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40, help="calls per operation (and then twice as many)")
    parser.add_argument("--src", help="run unkai from this source tree instead of the installed one")
    parser.add_argument("--peers", action="store_true", help="count moto's server and ministack too")
    parser.add_argument("--services", default=",".join(SERVICES),
                        help=f"comma-separated, of {','.join(ALL + ('lambda',))}, or all (all but lambda)")
    parser.add_argument("--peer-n", type=int, default=5,
                        help="calls per operation for the peers (a moto call costs ~50x unkai's)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per operation; the least is kept")
    parser.add_argument("--no-unkai", action="store_true", help="count only the peers")
    parser.add_argument("--out", default="callgrind", help="results file name (bench/results/NAME.json)")
    parser.add_argument("--idle", type=float, default=0.0,
                        help="seconds to measure the server's background rate before each operation, "
                             "subtracted for each batch's duration (steadier on a loaded machine)")
    parser.add_argument("--cpu", action="store_true",
                        help="server CPU time per call (no valgrind; N*10 calls a measurement) instead of instructions")
    parser.add_argument("--before", help="with --cpu: also an older unkai from this source tree, measured in turns")
    args = parser.parse_args()
    if args.services == "all":
        args.services = ",".join(ALL)
    if args.cpu:
        main_cpu(args)
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=args.src or Path(__file__).parent).stdout.strip()
    results: dict[str, Any] = {"n": args.n, "src": args.src or "installed", "commit": commit,
                               "load_average": os.getloadavg()}
    services = tuple(args.services.split(","))
    if not args.no_unkai:
        results["unkai"] = count("unkai", unkai_argv(args.src), "/_unkai/health", services, args.n,
                                 repeats=args.repeats, idle=args.idle)
        results["idle_seconds"] = args.idle
    if args.peers:
        exe = Path(sys.executable)
        results["moto"] = count("moto", [str(exe.with_name("moto_server")), "-p", "{port}"], "/moto-api/",
                                services, args.peer_n, repeats=1)
        home = tempfile.mkdtemp(prefix="cg-ministack-")
        results["ministack"] = count("ministack", [str(exe.with_name("ministack"))], "/_localstack/health",
                                     services, args.peer_n, env={"GATEWAY_PORT": "{port}", "LOG_LEVEL": "WARNING"},
                                     cwd=home, repeats=1)
    path = harness.write(args.out, results)
    names = [k for k in ("unkai", "moto", "ministack") if k in results]
    ops = next(results[k] for k in names)
    rows = [[op, *(f"{results[k].get(op, 0):,}" for k in names)] for op in ops]
    print(harness.table(rows, ["instructions per call (server)", *names]))
    print(f"\nwritten to {path}")


def main_cpu(args: argparse.Namespace) -> None:
    """``--cpu``: server CPU per call, unkai (and ``--before``'s tree) in turns in one run."""
    servers: dict[str, harness.Server] = {}
    try:
        for name, src in (("after", args.src), ("before", args.before)):
            if name == "before" and not src:
                continue
            port = harness.free_port()
            argv = [a.replace("{port}", str(port)) for a in unkai_argv(src)]
            servers[name if args.before else "unkai"] = harness.Server(name, argv, port, ready_path="/_unkai/health")
        found = cpu(servers, tuple(args.services.split(",")), args.n * 10, args.repeats)
    finally:
        for server in servers.values():
            server.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=args.src or Path(__file__).parent).stdout.strip()
    results = {"calls": args.n * 10, "repeats": args.repeats, "commit": commit, "before": args.before or "",
               "load_average": os.getloadavg(), "server_cpu_us_per_call": found}
    path = harness.write(args.out if args.out != "callgrind" else "server-cpu", results)
    names = list(found)
    rows = [[op, *(f"{found[k][op]:.0f}" for k in names)] for op in found[names[0]]]
    if len(names) == 2:
        rows = [r + [f"{found['after'][r[0]] / found['before'][r[0]]:.2f}"] for r in rows]
    print(harness.table(rows, ["server CPU us per call", *names] + (["after/before"] if len(names) == 2 else [])))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
