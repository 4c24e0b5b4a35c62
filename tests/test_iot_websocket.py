"""MQTT over WebSocket with SigV4 (``wss://host/mqtt``), as AWS IoT serves it to the Device
SDK and to browsers: the AWS IoT Device SDK v2 connects with a signing credentials provider,
paho connects with a presigned URL and a session token appended after signing (the browser
way), a bad signature, an unknown key, a stale date or missing parameters refuse the
handshake, and with ``--enforce-iam`` the signer's IAM policies decide connect, subscribe
and publish as IoT policies do for certificates."""

from __future__ import annotations

import datetime as dt
import json
import queue
import ssl
import uuid

import paho.mqtt.client as paho
import pytest

ACCESS, SECRET = "AKIDIOTWEBSOCKET", "iot-ws-secret"
WAIT = 10


@pytest.fixture(scope="module")
def unkai(tmp_path_factory):
    from unkai.testing import UnkaiServer

    with UnkaiServer(tmp_path_factory.mktemp("iot-ws") / "state", "--mqtt-port", "0", "--access-key", ACCESS,
                     "--secret-key", SECRET, "--enforce-iam").start() as server:
        yield server


@pytest.fixture(scope="module")
def broker(unkai, tmp_path_factory):
    info = unkai.get("/_unkai/iot")
    ca = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.write_text(info["caPem"])
    return {"port": info["mqtt"]["wsPort"], "ca": ca}


def presigned_path(port: int, access: str, secret: str, token: str | None = None, service: str = "iotdevicegateway",
                   when: dt.datetime | None = None) -> str:
    """``/mqtt?X-Amz-...`` signed as AWS IoT's browser samples sign it: the session token
    appended after signing."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=f"https://localhost:{port}/mqtt")
    signer = SigV4QueryAuth(Credentials(access, secret), service, "us-east-1", expires=300)
    if when is None:
        signer.add_auth(request)
    else:  # botocore signs at its clock's time: a URL signed an hour ago
        from unittest import mock

        with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
            signer.add_auth(request)
    path = request.url.split(f":{port}", 1)[1]
    return path + (f"&X-Amz-Security-Token={token}" if token else "")


class WsClient:
    """paho over WebSocket with a presigned path; CONNACK, SUBACKs and messages as queues."""

    def __init__(self, broker: dict, path: str, client_id: str) -> None:
        self.connack: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, transport="websockets")
        self.client.ws_set_options(path=path)
        self.client.tls_set(ca_certs=str(broker["ca"]))
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connack.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_subscribe = lambda c, u, mid, codes, p=None: self.subacks.put(codes)
        self.client.connect("localhost", broker["port"])
        self.client.loop_start()

    def accepted(self) -> bool:
        return not self.connack.get(timeout=WAIT).is_failure

    def subscribe(self, topic: str) -> bool:
        self.client.subscribe(topic, qos=1)
        return not self.subacks.get(timeout=WAIT)[0].is_failure

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def handshake_status(broker: dict, path: str) -> int:
    """The HTTP status the WebSocket upgrade gets (101 when it is accepted)."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    context = ssl.create_default_context(cafile=str(broker["ca"]))
    try:
        with connect(f"wss://localhost:{broker['port']}{path}", ssl=context, subprotocols=["mqtt"],
                     open_timeout=WAIT):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_the_device_sdk_connects_over_websocket_with_sigv4(unkai, broker):
    from awscrt import auth, exceptions, mqtt
    from awsiot import mqtt_connection_builder

    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    iam = unkai.client("iam")  # the server enforces IAM: the rule acts with a role IoT may assume
    role = iam.create_role(RoleName=f"iot-rule-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="send", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}))
    unkai.client("iot").create_topic_rule(ruleName=f"r_{uuid.uuid4().hex[:6]}", topicRulePayload={
        "sql": "SELECT *, clientid() AS client FROM 'browser/+/event'",
        "actions": [{"sqs": {"queueUrl": url, "roleArn": role["Arn"]}}]})

    def connection(secret: str) -> mqtt.Connection:
        return mqtt_connection_builder.websockets_with_default_aws_signing(
            endpoint="localhost", port=broker["port"], region="us-east-1",
            credentials_provider=auth.AwsCredentialsProvider.new_static(ACCESS, secret),
            ca_filepath=str(broker["ca"]), client_id="web-sdk", clean_session=True, keep_alive_secs=30)

    with pytest.raises(exceptions.AwsCrtError, match="WEBSOCKET_UPGRADE"):
        connection("not-the-secret").connect().result(WAIT)
    conn = connection(SECRET)
    conn.connect().result(WAIT)
    try:
        got: queue.Queue = queue.Queue()
        sub, _ = conn.subscribe("browser/#", mqtt.QoS.AT_LEAST_ONCE,
                                callback=lambda topic, payload, **kw: got.put((topic, payload)))
        assert sub.result(WAIT)["qos"] == mqtt.QoS.AT_LEAST_ONCE
        conn.publish("browser/1/event", json.dumps({"click": 1}), mqtt.QoS.AT_LEAST_ONCE)[0].result(WAIT)
        assert got.get(timeout=WAIT) == ("browser/1/event", b'{"click": 1}')
        unkai.client("iot-data").publish(topic="browser/1/command", payload=b"reload", qos=1)
        assert got.get(timeout=WAIT) == ("browser/1/command", b"reload")
        body = json.loads(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]["Body"])
        assert body == {"click": 1, "client": "web-sdk"}
    finally:
        conn.disconnect().result(WAIT)


def test_a_presigned_url_with_a_session_token_and_the_signers_iam_policy(unkai, broker):
    iam = unkai.client("iam")
    user = f"browser-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="iot", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/web-*"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:aws:iot:*:*:topic/web/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:aws:iot:*:*:topicfilter/web/*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sts = unkai.client("sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    session = sts.get_session_token()["Credentials"]

    def path() -> str:
        return presigned_path(broker["port"], session["AccessKeyId"], session["SecretAccessKey"],
                              session["SessionToken"])

    web = WsClient(broker, path(), "web-1")
    try:
        assert web.accepted()
        assert web.subscribe("web/#")
        assert not web.subscribe("other/#")  # iot:Subscribe is not allowed on that filter
        web.client.publish("web/page", b"hello", qos=1)
        assert web.messages.get(timeout=WAIT) == ("web/page", b"hello")
    finally:
        web.close()
    other = WsClient(broker, path(), "kiosk-1")  # iot:Connect allows web-* client ids only
    try:
        assert not other.accepted()
    finally:
        other.close()
    # the session token belongs to the key: without it, an issued session key is refused
    assert handshake_status(broker, presigned_path(broker["port"], session["AccessKeyId"],
                                                   session["SecretAccessKey"])) == 403


def test_handshakes_without_a_valid_signature_are_refused(broker):
    port = broker["port"]
    assert handshake_status(broker, presigned_path(port, ACCESS, SECRET)) == 101
    assert handshake_status(broker, "/mqtt") == 403
    assert handshake_status(broker, presigned_path(port, ACCESS, "wrong")) == 403
    assert handshake_status(broker, presigned_path(port, "AKIDUNKNOWN", SECRET)) == 403
    assert handshake_status(broker, presigned_path(port, ACCESS, SECRET, service="iot")) == 403
    stale = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    assert handshake_status(broker, presigned_path(port, ACCESS, SECRET, when=stale)) == 403
    assert handshake_status(broker, "/other" + presigned_path(port, ACCESS, SECRET)[len("/mqtt"):]) == 404
    tampered = presigned_path(port, ACCESS, SECRET).replace("X-Amz-Expires=300", "X-Amz-Expires=600")
    assert handshake_status(broker, tampered) == 403


def test_the_device_sdk_mqtt5_client_over_websocket(broker):
    from concurrent.futures import Future

    from awscrt import auth, mqtt5
    from awsiot import mqtt5_client_builder

    connected: Future = Future()
    got: queue.Queue = queue.Queue()
    client = mqtt5_client_builder.websockets_with_default_aws_signing(
        endpoint="localhost", port=broker["port"], region="us-east-1",
        credentials_provider=auth.AwsCredentialsProvider.new_static(ACCESS, SECRET), ca_filepath=str(broker["ca"]),
        client_id="web-five", on_lifecycle_connection_success=lambda data: connected.set_result(data.connack_packet),
        on_lifecycle_connection_failure=lambda data: connected.set_exception(data.exception),
        on_publish_received=lambda data: got.put((data.publish_packet.topic, data.publish_packet.payload)))
    client.start()
    try:
        assert connected.result(WAIT).reason_code == mqtt5.ConnectReasonCode.SUCCESS
        client.subscribe(mqtt5.SubscribePacket(subscriptions=[
            mqtt5.Subscription("five/#", mqtt5.QoS.AT_LEAST_ONCE)])).result(WAIT)
        client.publish(mqtt5.PublishPacket(topic="five/ws", payload=b"x", qos=mqtt5.QoS.AT_LEAST_ONCE)).result(WAIT)
        assert got.get(timeout=WAIT) == ("five/ws", b"x")
    finally:
        client.stop()
