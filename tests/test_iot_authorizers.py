"""AWS IoT Core custom authorizers: the authorizer operations with AWS's errors,
TestInvokeAuthorizer answering what the authorizer's Lambda answers (signed tokens checked
against tokenSigningPublicKeys), and MQTT clients without a client certificate connecting
with a username and password (or a signed token) that the Lambda judges, its policy
documents then deciding what they may do."""

from __future__ import annotations

import base64
import json
import queue
import uuid
from urllib.parse import quote

import paho.mqtt.client as paho
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.iot_support import broker, iot, mqtt_server  # noqa: F401 (fixtures)
from tests.lambda_code import deploy

WAIT = 15

AUTHORIZER = """
import base64

POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/${iot:ClientId}"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:aws:iot:*:*:topic/custom/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:aws:iot:*:*:topicfilter/custom/*"}]}


def handler(event, context):
    mqtt = event.get("protocolData", {}).get("mqtt", {})
    password = base64.b64decode(mqtt.get("password") or "").decode()
    headers = {k.lower(): v for k, v in (event.get("protocolData", {}).get("http", {}).get("headers") or {}).items()}
    ok = "open-sesame" in (password, headers.get("x-password")) or (
        event.get("token") == "good-token" and event.get("signatureVerified"))
    user = (mqtt.get("username") or "").split("?")[0]
    if user == "hasty":  # a refresh more often than AWS allows (its bounds are 300 to 86,400 s)
        return {"isAuthenticated": ok, "principalId": "hasty", "refreshAfterInSeconds": 1, "policyDocuments": []}
    if user == "watch":  # may see everything, for as long as it likes
        return {"isAuthenticated": ok, "principalId": "watcher", "policyDocuments": [
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}]}
    return {"isAuthenticated": ok, "principalId": f"{user or 'token'}-{mqtt.get('clientId', 'none')}",
            "disconnectAfterInSeconds": 3600, "refreshAfterInSeconds": 300, "policyDocuments": [POLICY]}
"""


unkai = mqtt_server("iot-authorizers")


@pytest.fixture(scope="module")
def function_arn(unkai):
    lam = unkai.client("lambda")
    name = deploy(lam, AUTHORIZER)
    return lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(key, token: str) -> str:
    return base64.b64encode(key.sign(token.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def authorizer(iot, function_arn: str, **extra) -> str:
    name = f"auth-{uuid.uuid4().hex[:6]}"
    iot.create_authorizer(authorizerName=name, authorizerFunctionArn=function_arn,
                          **({"signingDisabled": True} | extra))
    return name


class Client:
    """paho over TLS without a client certificate, with a username and password."""

    def __init__(self, broker: dict, username: str, password: str | None, client_id: str | None = None,
                 version: int = paho.MQTTv311) -> None:
        self.connack: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.closed: queue.Queue = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or f"c-{uuid.uuid4().hex[:6]}",
                                  protocol=version)
        self.client.tls_set(ca_certs=str(broker["ca"]))
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connack.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_subscribe = lambda c, u, mid, codes, p=None: self.subacks.put(codes)
        self.client.on_disconnect = lambda c, u, f, rc, p=None: self.closed.put(rc)
        self.client.connect("localhost", broker["port"])
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_authorizer_operations_answer_as_aws_does(iot, function_arn, signing_key):
    name = authorizer(iot, function_arn, tags=[{"Key": "team", "Value": "boxes"}])
    described = iot.describe_authorizer(authorizerName=name)["authorizerDescription"]
    assert described["authorizerFunctionArn"] == function_arn
    assert (described["status"], described["signingDisabled"]) == ("ACTIVE", True)
    assert described["authorizerArn"].endswith(f":authorizer/{name}")
    assert name in [a["authorizerName"] for a in iot.list_authorizers()["authorizers"]]
    assert iot.list_tags_for_resource(resourceArn=described["authorizerArn"])["tags"] == [
        {"Key": "team", "Value": "boxes"}]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_authorizer(authorizerName=name, authorizerFunctionArn=function_arn, signingDisabled=True)
    with pytest.raises(iot.exceptions.InvalidRequestException):  # signing on needs a token key and public keys
        iot.create_authorizer(authorizerName=f"{name}-signed", authorizerFunctionArn=function_arn)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_authorizer(authorizerName=f"{name}-badkey", authorizerFunctionArn=function_arn,
                              tokenKeyName="token", tokenSigningPublicKeys={"k": "not a key"})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_authorizer(authorizerName="nobody")

    iot.set_default_authorizer(authorizerName=name)
    assert iot.describe_default_authorizer()["authorizerDescription"]["authorizerName"] == name
    with pytest.raises(iot.exceptions.DeleteConflictException):  # ACTIVE
        iot.delete_authorizer(authorizerName=name)
    iot.update_authorizer(authorizerName=name, status="INACTIVE")
    assert name in [a["authorizerName"] for a in iot.list_authorizers(status="INACTIVE")["authorizers"]]
    assert name not in [a["authorizerName"] for a in iot.list_authorizers(status="ACTIVE")["authorizers"]]
    with pytest.raises(iot.exceptions.DeleteConflictException):  # still the default
        iot.delete_authorizer(authorizerName=name)
    iot.clear_default_authorizer()
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_default_authorizer()
    iot.delete_authorizer(authorizerName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_authorizer(authorizerName=name)


def test_test_invoke_authorizer_answers_what_the_function_answers(iot, function_arn, signing_key):
    name = authorizer(iot, function_arn)
    ok = iot.test_invoke_authorizer(authorizerName=name, mqttContext={
        "username": "alice", "password": b"open-sesame", "clientId": "box-1"})
    assert ok["isAuthenticated"] is True and ok["principalId"] == "alice-box-1"
    assert ok["refreshAfterInSeconds"] == 300 and ok["disconnectAfterInSeconds"] == 3600
    assert json.loads(ok["policyDocuments"][0])["Statement"][0]["Action"] == "iot:Connect"
    no = iot.test_invoke_authorizer(authorizerName=name, mqttContext={
        "username": "alice", "password": b"wrong", "clientId": "box-1"})
    assert no["isAuthenticated"] is False
    with pytest.raises(iot.exceptions.InvalidResponseException):
        iot.test_invoke_authorizer(authorizerName=name, mqttContext={
            "username": "hasty", "password": b"open-sesame", "clientId": "box-1"})

    signed = authorizer(iot, function_arn, signingDisabled=False, tokenKeyName="token",
                        tokenSigningPublicKeys={"main": public_pem(signing_key)})
    good = iot.test_invoke_authorizer(authorizerName=signed, token="good-token",
                                      tokenSignature=sign(signing_key, "good-token"))
    assert good["isAuthenticated"] is True and good["principalId"] == "token-none"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(iot.exceptions.InvalidRequestException):  # signed by a key the authorizer does not know
        iot.test_invoke_authorizer(authorizerName=signed, token="good-token", tokenSignature=sign(other, "good-token"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.test_invoke_authorizer(authorizerName="nobody", token="x", tokenSignature="eA==")


def test_mqtt_clients_without_certificates_connect_through_the_authorizer(iot, unkai, broker, function_arn,
                                                                          signing_key):
    name = authorizer(iot, function_arn)
    client_id = f"box-{uuid.uuid4().hex[:6]}"
    iot.create_topic_rule(ruleName=f"who_{uuid.uuid4().hex[:6]}", topicRulePayload={
        "sql": "SELECT principal() AS p, clientid() AS c FROM 'custom/alice'", "actions": [
            {"republish": {"roleArn": "arn:aws:iam::000000000000:role/iot", "topic": "custom/principal"}}]})
    watcher = Client(broker, f"watch?x-amz-customauthorizer-name={name}", "open-sesame")
    assert watcher.connack.get(timeout=WAIT).value == 0
    alice = Client(broker, f"alice?x-amz-customauthorizer-name={name}", "open-sesame", client_id=client_id)
    try:
        assert alice.connack.get(timeout=WAIT).value == 0
        watcher.client.subscribe("custom/#", qos=1)
        assert not watcher.subacks.get(timeout=WAIT)[0].is_failure
        alice.client.subscribe("custom/alice", qos=1)
        assert not alice.subacks.get(timeout=WAIT)[0].is_failure
        alice.client.subscribe("elsewhere/alice", qos=1)  # the function's policy does not allow it
        assert alice.subacks.get(timeout=WAIT)[0].is_failure
        alice.client.publish("custom/alice", b"hello", qos=1).wait_for_publish(WAIT)
        assert alice.messages.get(timeout=WAIT) == ("custom/alice", b"hello")
        seen = dict(watcher.messages.get(timeout=WAIT) for _ in range(2))
        assert seen["custom/alice"] == b"hello"
        # principal() is the function's principalId
        assert json.loads(seen["custom/principal"]) == {"p": f"alice-{client_id}", "c": client_id}
    finally:
        alice.close()
        watcher.close()

    wrong = Client(broker, f"alice?x-amz-customauthorizer-name={name}", "wrong")
    try:
        assert wrong.connack.get(timeout=WAIT).value == 0x87  # not authorized
    finally:
        wrong.close()
    five = Client(broker, f"alice?x-amz-customauthorizer-name={name}", "wrong", version=paho.MQTTv5)
    try:
        assert five.connack.get(timeout=WAIT).value == 0x87
    finally:
        five.close()
    nameless = Client(broker, "bob", "open-sesame")  # no authorizer named and no default: refused
    try:
        assert nameless.connack.get(timeout=WAIT).value == 0x87
    finally:
        nameless.close()
    iot.set_default_authorizer(authorizerName=name)
    try:
        bob = Client(broker, "bob", "open-sesame")  # the default authorizer judges
        try:
            assert bob.connack.get(timeout=WAIT).value == 0
            bob.client.publish("not/allowed", b"x", qos=1)  # outside the function's policy: closed
            assert bob.closed.get(timeout=WAIT) is not None
        finally:
            bob.close()
    finally:
        iot.clear_default_authorizer()

    signed = authorizer(iot, function_arn, signingDisabled=False, tokenKeyName="token",
                        tokenSigningPublicKeys={"main": public_pem(signing_key)})
    username = (f"device?x-amz-customauthorizer-name={signed}&token=good-token"
                f"&x-amz-customauthorizer-signature={quote(sign(signing_key, 'good-token'), safe='')}")
    device = Client(broker, username, None)
    try:
        assert device.connack.get(timeout=WAIT).value == 0
    finally:
        device.close()
    forged = Client(broker, f"device?x-amz-customauthorizer-name={signed}&token=good-token"
                            f"&x-amz-customauthorizer-signature={quote(sign(rsa.generate_private_key(public_exponent=65537, key_size=2048), 'good-token'), safe='')}", None)  # noqa: E501
    try:
        assert forged.connack.get(timeout=WAIT).value == 0x87
    finally:
        forged.close()


def handshake_status(broker: dict, path: str, headers: dict | None = None) -> int:
    """The HTTP status the WebSocket upgrade gets (101 when it is accepted)."""
    import ssl

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    context = ssl.create_default_context(cafile=str(broker["ca"]))
    try:
        with connect(f"wss://localhost:{broker['wsPort']}{path}", ssl=context, subprotocols=["mqtt"],
                     additional_headers=headers, open_timeout=WAIT):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_websocket_handshakes_through_the_authorizer(iot, broker, function_arn, signing_key):
    signed = authorizer(iot, function_arn, signingDisabled=False, tokenKeyName="token",
                        tokenSigningPublicKeys={"main": public_pem(signing_key)})
    path = (f"/mqtt?x-amz-customauthorizer-name={signed}&token=good-token"
            f"&x-amz-customauthorizer-signature={quote(sign(signing_key, 'good-token'), safe='')}")
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"ws-{uuid.uuid4().hex[:6]}",
                         transport="websockets")
    got: queue.Queue = queue.Queue()
    connack: queue.Queue = queue.Queue()
    subacks: queue.Queue = queue.Queue()
    client.ws_set_options(path=path)
    client.tls_set(ca_certs=str(broker["ca"]))
    client.on_connect = lambda c, u, f, rc, p=None: connack.put(rc)
    client.on_message = lambda c, u, m: got.put((m.topic, m.payload))
    client.on_subscribe = lambda c, u, mid, codes, p=None: subacks.put(codes)
    client.connect("localhost", broker["wsPort"])
    client.loop_start()
    try:
        assert connack.get(timeout=WAIT).value == 0
        client.subscribe("custom/ws", qos=1)
        assert not subacks.get(timeout=WAIT)[0].is_failure
        client.publish("custom/ws", b"over wss", qos=1).wait_for_publish(WAIT)
        assert got.get(timeout=WAIT) == ("custom/ws", b"over wss")
    finally:
        client.disconnect()
        client.loop_stop()
    forged = sign(rsa.generate_private_key(public_exponent=65537, key_size=2048), "good-token")
    assert handshake_status(broker, f"/mqtt?x-amz-customauthorizer-name={signed}&token=good-token"
                                    f"&x-amz-customauthorizer-signature={quote(forged, safe='')}") == 401
    # headers instead of the query; an authorizer without signing whose function reads a header
    plain = authorizer(iot, function_arn)
    assert handshake_status(broker, "/mqtt", {"x-amz-customauthorizer-name": plain, "x-password": "open-sesame"}) \
        == 101
    assert handshake_status(broker, "/mqtt", {"x-amz-customauthorizer-name": plain, "x-password": "wrong"}) == 401
    assert handshake_status(broker, "/mqtt", {"x-amz-customauthorizer-name": "nobody"}) == 401
    assert handshake_status(broker, "/mqtt") == 403  # neither SigV4 nor an authorizer


def test_authorized_connections_are_judged_again_and_expire_on_the_clock(iot, unkai, broker, function_arn):
    first, second = authorizer(iot, function_arn), authorizer(iot, function_arn)
    watcher = Client(broker, f"watch?x-amz-customauthorizer-name={first}", "open-sesame")
    assert watcher.connack.get(timeout=WAIT).value == 0
    watcher.client.subscribe("$aws/events/presence/disconnected/+", qos=1)
    assert not watcher.subacks.get(timeout=WAIT)[0].is_failure
    carol, dave = f"carol-{uuid.uuid4().hex[:6]}", f"dave-{uuid.uuid4().hex[:6]}"
    refused = Client(broker, f"carol?x-amz-customauthorizer-name={first}", "open-sesame", client_id=carol)
    kept = Client(broker, f"dave?x-amz-customauthorizer-name={second}", "open-sesame", client_id=dave)
    try:
        assert refused.connack.get(timeout=WAIT).value == 0 and kept.connack.get(timeout=WAIT).value == 0
        kept.client.subscribe("custom/dave", qos=1)
        assert not kept.subacks.get(timeout=WAIT)[0].is_failure
        # refreshAfterInSeconds (300): the first authorizer, now INACTIVE, refuses on refresh
        iot.update_authorizer(authorizerName=first, status="INACTIVE")
        unkai.advance(301)
        topic, payload = watcher.messages.get(timeout=WAIT)
        event = json.loads(payload)
        assert (event["clientId"], event["disconnectReason"]) == (carol, "AUTH_ERROR")
        assert refused.closed.get(timeout=WAIT) is not None
        kept.client.publish("custom/dave", b"still here", qos=1).wait_for_publish(WAIT)
        assert kept.messages.get(timeout=WAIT) == ("custom/dave", b"still here")
        # disconnectAfterInSeconds (3600) ends the other one
        unkai.advance(3300)
        topic, payload = watcher.messages.get(timeout=WAIT)
        event = json.loads(payload)
        assert (event["clientId"], event["disconnectReason"]) == (dave, "CUSTOMAUTH_TTL_EXPIRATION")
        assert kept.closed.get(timeout=WAIT) is not None
    finally:
        for c in (refused, kept, watcher):
            c.close()



def test_the_device_https_endpoint_publishes_through_the_authorizer(iot, broker, function_arn):
    import http.client
    import ssl

    name = authorizer(iot, function_arn)
    watcher = Client(broker, f"watch?x-amz-customauthorizer-name={name}", "open-sesame")
    assert watcher.connack.get(timeout=WAIT).value == 0
    watcher.client.subscribe("custom/#", qos=1, properties=None)
    assert not watcher.subacks.get(timeout=WAIT)[0].is_failure

    def post(path: str, headers: dict) -> int:
        context = ssl.create_default_context(cafile=str(broker["ca"]))  # no client certificate
        conn = http.client.HTTPSConnection("localhost", broker["httpsPort"], context=context, timeout=WAIT)
        try:
            conn.request("POST", path, body=b"via https", headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    try:
        assert post("/topics/custom/http?qos=1", {"x-amz-customauthorizer-name": name, "x-password": "open-sesame"}) \
            == 200
        assert watcher.messages.get(timeout=WAIT) == ("custom/http", b"via https")
        assert post("/topics/custom/http?qos=1", {"x-amz-customauthorizer-name": name, "x-password": "no"}) == 403
        # the function's policy allows custom/* only
        assert post("/topics/other/http?qos=1", {"x-amz-customauthorizer-name": name, "x-password": "open-sesame"}) \
            == 403
        assert post("/topics/custom/http?qos=1", {}) == 403  # neither a certificate nor an authorizer
    finally:
        watcher.close()


AUTHORIZER_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Gate:
    Type: AWS::IoT::Authorizer
    Properties:
      AuthorizerName: gate
      AuthorizerFunctionArn: arn:aws:lambda:us-east-1:000000000000:function:gate
      SigningDisabled: true
      Status: ACTIVE
"""


def test_a_template_authorizer_is_updated_in_place_and_deleted_with_the_template(tmp_path):
    from tests.template_helpers import wait_for
    from unkai.testing import UnkaiServer

    template = tmp_path / "app" / "template.yaml"
    template.parent.mkdir()
    template.write_text(AUTHORIZER_TEMPLATE)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        iot, cfn = server.client("iot"), server.client("cloudformation")
        created = iot.describe_authorizer(authorizerName="gate")["authorizerDescription"]
        assert created["status"] == "ACTIVE"
        template.write_text(AUTHORIZER_TEMPLATE.replace("Status: ACTIVE", "Status: INACTIVE"))
        wait_for(lambda: iot.describe_authorizer(authorizerName="gate")["authorizerDescription"]["status"]
                 == "INACTIVE")
        updated = iot.describe_authorizer(authorizerName="gate")["authorizerDescription"]
        assert updated["creationDate"] == created["creationDate"]  # the same authorizer, not a new one
        stack = cfn.list_stacks()["StackSummaries"][0]["StackName"]
        wait_for(lambda: cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE")
        template.write_text(AUTHORIZER_TEMPLATE.replace("Status: INACTIVE", "Status: ACTIVE").replace(
            "  Gate:\n", "  Other:\n").replace("AuthorizerName: gate", "AuthorizerName: other"))
        wait_for(lambda: [a["authorizerName"] for a in iot.list_authorizers()["authorizers"]] == ["other"])
