"""Issue 13's benchmark: SES SendEmail through boto3 against the floor (unkai's recorded
answer replayed by a trivial server), the server's RSS once 10,000 mails are stored, and
examples/mailing-list end to end for 1,000 addresses (seconds from the upload until the
last mail is in the mailbox, with unkai's clock advanced past the 5-minute schedule).

    python bench/ses.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIM = "@simulator.amazonses.com"
MESSAGE = {"Subject": {"Data": "bench"}, "Body": {"Text": {"Data": "hello " * 40}}}


def post(server: harness.Server, path: str) -> dict:
    req = urllib.request.Request(server.endpoint + path, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=660) as resp:
        return json.loads(resp.read())


def get(server: harness.Server, path: str) -> object:
    with urllib.request.urlopen(server.endpoint + path, timeout=60) as resp:
        return json.loads(resp.read())


def client(server: harness.Server, service: str, region: str = "us-east-1"):
    import boto3
    from botocore.config import Config

    creds = {k: v for k, v in harness.CREDS.items() if k != "region_name"}
    return boto3.client(service, endpoint_url=server.endpoint, region_name=region,
                        config=Config(retries={"max_attempts": 0}), **creds)


def start(*args: str, state: str | None = None, region: str = "us-east-1") -> harness.Server:
    port = harness.free_port()
    where = ["--state-dir", state] if state else ["--ephemeral"]
    return harness.Server("unkai", [*harness.unkai_command(), "up", *where, "--port", str(port),
                                    "--region", region, *args], port, ready_path="/_unkai/health")


def send_email(n: int, stored: int) -> dict:
    server = start()
    try:
        ses = client(server, "ses", "us-east-1")
        ses.verify_domain_identity(Domain="bench.example")
        post(server, "/_unkai/clock/advance?seconds=61")
        send = lambda: ses.send_email(Source="b@bench.example", Destination={"ToAddresses": [f"success{SIM}"]},  # noqa: E731
                                      Message=MESSAGE)
        rec = harness.record(ses, lambda c: send())
        floor = harness.start_floor({rec["key"]: rec})
        try:
            fses = client(floor, "ses", "us-east-1")
            send_floor = lambda: fses.send_email(Source="b@bench.example",  # noqa: E731
                                                 Destination={"ToAddresses": [f"success{SIM}"]}, Message=MESSAGE)
            # interleaved, one call each in turn, so the shared machine's load swings hit both alike
            samples: dict[str, list[float]] = {"floor": [], "unkai": []}
            for i in range(50 + n):
                for label, call in (("floor", send_floor), ("unkai", send)):
                    t = time.perf_counter()
                    call()
                    if i >= 50:
                        samples[label].append(time.perf_counter() - t)
        finally:
            floor.stop()
        floor_stats, unkai_stats = harness.stats(samples["floor"]), harness.stats(samples["unkai"])
        post(server, "/_unkai/drain?timeout=120")
        while len(get(server, "/_unkai/mail")) < stored:
            for _ in range(500):
                send()
            post(server, "/_unkai/drain?timeout=120")
        mails = len(get(server, "/_unkai/mail"))
        return {"floor": floor_stats, "unkai": unkai_stats,
                "ratio_median": round(unkai_stats["median_ms"] / floor_stats["median_ms"], 2),
                "ratio_p99": round(unkai_stats["p99_ms"] / floor_stats["p99_ms"], 2),
                "stored_mails": mails, "rss_mb_after_stored": round(server.rss_mb(), 1)}
    finally:
        server.stop()


def mailing_list(addresses: int) -> dict:
    state = tempfile.mkdtemp(prefix="bench-ses-") + "/state"
    setup = start(state=state, region="ap-northeast-1")
    try:
        ses = client(setup, "ses", "us-east-1")
        ses.verify_email_identity(EmailAddress="list@bench.example")
        (mail,) = get(setup, "/_unkai/mail?to=list@bench.example")
        link = next(w for w in mail["text"].split() if "/_unkai/ses/verify" in w)
        urllib.request.urlopen(link, timeout=30).read()
        topic = client(setup, "sns", "us-east-1").create_topic(Name="bounce-notifications")["TopicArn"]
        ses.set_identity_notification_topic(Identity="list@bench.example", NotificationType="Bounce", SnsTopic=topic)
    finally:
        setup.stop()
    server = start(str(ROOT / "examples" / "mailing-list"), "--parameter-overrides", "MailFrom=list@bench.example",
                   "--parameter-overrides", f"BounceTopicArn={topic}", state=state, region="ap-northeast-1")
    try:
        while get(server, "/_unkai/health")["status"] != "ready":
            time.sleep(0.2)
        import boto3

        ddb = boto3.resource("dynamodb", endpoint_url=server.endpoint, region_name="ap-northeast-1",
                             aws_access_key_id="bench", aws_secret_access_key="bench")
        with ddb.Table("mailaddress").batch_writer() as batch:
            for i in range(addresses):
                batch.put_item(Item={"email": f"success+{i}{SIM}", "username": f"u{i}", "haserror": 0})
        cf = client(server, "cloudformation", "ap-northeast-1")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in cf.describe_stacks()["Stacks"][0]["Outputs"]}
        before = len(get(server, "/_unkai/mail"))
        s3 = client(server, "s3", "ap-northeast-1")
        pid = server.proc.pid
        before_cpu = {p: harness.cpu_seconds(p, children=True) for p in [pid, *harness.descendants(pid)]}
        started = time.perf_counter()
        s3.put_object(Bucket=outputs["MailBodyBucketName"], Key="news.txt", Body="News\n\nHello {username}\n".encode())
        rounds = 0
        while len(get(server, "/_unkai/mail")) - before < addresses and rounds < 40:
            post(server, "/_unkai/drain?timeout=120")
            post(server, "/_unkai/clock/advance?seconds=300")
            post(server, "/_unkai/drain?timeout=120")
            rounds += 1
        elapsed = time.perf_counter() - started
        # CPU spent meanwhile: unkai's own process, and the Lambda workers below it (the
        # handlers' code and their boto3 calls, what AWS would run too)
        server_cpu = harness.cpu_seconds(pid) - before_cpu[pid]
        workers_cpu = sum(harness.cpu_seconds(p, children=True) - before_cpu.get(p, 0.0)
                          for p in harness.descendants(pid))
        sent = len(get(server, "/_unkai/mail")) - before
        return {"addresses": addresses, "mails": sent, "seconds": round(elapsed, 1), "schedule_runs": rounds,
                "rss_mb": round(server.rss_mb(), 1), "server_cpu_s": round(server_cpu, 1),
                "workers_cpu_s": round(workers_cpu, 1)}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("send", "list"), help="run one part only (while profiling)")
    args = parser.parse_args()
    n, stored, addresses = (300, 2000, 200) if args.quick else (2000, 10000, 1000)
    if args.only:
        found = {"send_email": send_email(n, 0)} if args.only == "send" else {"mailing_list": mailing_list(addresses)}
        print(json.dumps(found, indent=1))
        print(harness.merge("ses", found))
        return
    result = {"machine": harness.machine(), "send_email": send_email(n, stored),
              "mailing_list": mailing_list(addresses)}
    harness.write("ses", result)
    s, m = result["send_email"], result["mailing_list"]
    print(harness.table([
        ["SendEmail (median / p99 ms)", f"{s['floor']['median_ms']} / {s['floor']['p99_ms']}",
         f"{s['unkai']['median_ms']} / {s['unkai']['p99_ms']} ({s['ratio_median']}x / {s['ratio_p99']}x)"],
        [f"RSS after {s['stored_mails']} stored mails", "", f"{s['rss_mb_after_stored']} MB"],
        [f"mailing list, {m['addresses']} addresses", "", f"{m['seconds']} s ({m['mails']} mails, "
                                                           f"{m['schedule_runs']} schedule runs)"],
        ["  CPU meanwhile: unkai's process / the Lambda workers", "",
         f"{m['server_cpu_s']} s / {m['workers_cpu_s']} s"],
    ], ["measure", "floor", "unkai"]))


if __name__ == "__main__":
    main()
