"""Services load on first use (unkai/cloud.py): a bare cloud imports none of them, a service
loads at its first request, template resource or cross-service call, at start when its
tables hold state (schedules fire after a restart without a request), and before a
request one of its own routes may answer (so the first such request is answered as any
later one). ``/_unkai/health`` lists what is loaded."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.error
import urllib.request

import pytest

from unkai.testing import UnkaiServer


def _loaded(server: UnkaiServer) -> list[str]:
    return server.get("/_unkai/health")["loaded"]


def _answer(server: UnkaiServer, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple:
    request = urllib.request.Request(server.url(path), method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory):
    server = UnkaiServer(tmp_path_factory.mktemp("lazy") / "state").start()
    yield server
    server.stop()


def test_a_bare_cloud_loads_no_service_and_a_call_loads_only_that_ones_package(bare):
    assert _loaded(bare) == []
    assert "sqs" in bare.get("/_unkai/health")["services"]  # still served, listed
    sqs = bare.client("sqs")
    url = sqs.create_queue(QueueName="lazy")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hi")
    loaded = _loaded(bare)
    assert "sqs" in loaded
    assert "s3" not in loaded and "dynamodb" not in loaded and "lambda" not in loaded
    ddb = bare.client("dynamodb")
    ddb.create_table(TableName="lazy-table", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    loaded = _loaded(bare)
    assert {"dynamodb", "dynamodbstreams"} <= set(loaded)  # one package, both of its services


def test_the_first_request_to_a_route_of_a_service_not_loaded_is_answered_by_that_service(tmp_path):
    """Function URLs, API stages and S3's CORS preflights are routes services mount when they
    load: the answer on a fresh cloud is the one the loaded service gives."""
    probes = [("/_unkai/execute-api/abcdef1234/prod/items", "GET", {}),
              ("/_unkai/lambda-url/" + "a" * 32 + "/", "GET", {}),
              ("/some-bucket/key", "OPTIONS", {"Origin": "http://example.com", "Access-Control-Request-Method": "GET"})]
    fresh = UnkaiServer(tmp_path / "fresh").start()
    try:
        first = [_answer(fresh, *p) for p in probes]
        assert {"apigateway", "lambda", "s3"} <= set(_loaded(fresh))
        again = [_answer(fresh, *p) for p in probes]
    finally:
        fresh.stop()
    assert first == again
    assert first[0][0] != 404 or b"no such unkai endpoint" not in first[0][1]
    assert first[2][0] == 404 and b"NoSuchBucket" in first[2][1]  # S3's preflight answer, not the gateway's


def test_a_restart_resumes_a_schedule_without_a_request_to_the_scheduler(tmp_path):
    state = tmp_path / "state"
    server = UnkaiServer(state).start()
    try:
        sqs = server.client("sqs")
        url = sqs.create_queue(QueueName="ticks")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        now = dt.datetime.fromisoformat(server.get("/_unkai/clock")["now"].replace("Z", "+00:00"))
        at = (now + dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
        server.client("scheduler").create_schedule(
            Name="later", ScheduleExpression=f"at({at})", FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": arn, "RoleArn": "arn:aws:iam::000000000000:role/s", "Input": '"fired"'})
    finally:
        server.stop()
    server = UnkaiServer(state).start()
    try:
        assert {"scheduler", "sqs"} <= set(_loaded(server))  # their tables hold state
        assert "s3" not in _loaded(server)
        server.advance(660)
        server.drain()
        sqs = server.client("sqs")
        got = sqs.receive_message(QueueUrl=sqs.get_queue_url(QueueName="ticks")["QueueUrl"], WaitTimeSeconds=1)
        assert [m["Body"] for m in got.get("Messages", [])] == ['"fired"']
    finally:
        server.stop()


def test_a_service_first_used_after_the_snapshot_resets_like_the_others(bare):
    """The reset snapshot is taken when unkai is ready, before SNS was ever loaded."""
    sns = bare.client("sns")
    sns.create_topic(Name="made-after-ready")
    bare.reset()
    assert sns.list_topics()["Topics"] == []
    assert sns.create_topic(Name="again")["TopicArn"].endswith(":again")
    bare.reset(empty=True)
    assert sns.list_topics()["Topics"] == []


def test_a_corrupt_service_catalog_is_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    first = UnkaiServer(tmp_path / "one", env={"XDG_CACHE_HOME": str(cache)}).start()
    first.stop()
    (catalog,) = (cache / "unkai").glob("services-*.json")
    data = json.loads(catalog.read_text())
    assert data["services"]["lambda"]["package"] == "awslambda"
    assert "AWS::SQS::Queue" in data["services"]["sqs"]["resource_types"]
    catalog.write_text("{not json")
    second = UnkaiServer(tmp_path / "two", env={"XDG_CACHE_HOME": str(cache)}).start()
    try:
        assert second.client("sqs").create_queue(QueueName="q")["QueueUrl"]
    finally:
        second.stop()
    assert json.loads(catalog.read_text())["services"]["sqs"]["package"] == "sqs"


def test_what_each_package_declares_matches_what_it_does(tmp_path):
    """A package whose start() mounts routes must say so (``serves_routes``), or its first
    request would miss them; every table a package creates is named for it, so a restart
    finds the packages holding state."""
    from unkai.cloud import Cloud
    from unkai.config import Config
    from unkai.gateway import Gateway
    from unkai.services import catalog
    from unkai.store import Store

    entries = catalog()["services"]
    routed = {e["package"] for e in entries.values() if e["serves_routes"]}
    names = {n.replace("-", "_") for n in entries} | {e["package"] for e in entries.values()}
    core = {"unkai", "sqlite", "mail", "inbox", "terraform"}
    store = Store(tmp_path / "unkai.db")
    try:
        cloud = Cloud(Config(state_dir=tmp_path / "state"), store)
        cloud.gateway = gateway = Gateway(cloud)
        core_routes = len(gateway.internal.routes)

        async def load_all() -> None:
            await cloud.services.start()
            for name in entries:
                cloud.services[name]
            await cloud.stop()

        asyncio.run(load_all())
        handlers = [h for _, h in gateway.mounts] + [r[2] for r in gateway.internal.routes[core_routes:]] + \
            [gateway.websocket_handler]
        owners = {getattr(h, "__module__", "").split(".")[2] for h in handlers if h is not None}
        assert owners and owners <= routed, owners - routed
        tables = [n for (n,) in store.db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert [t for t in tables if t.split("_", 1)[0] not in names | core] == []
    finally:
        store.close()
