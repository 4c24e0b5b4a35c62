"""AWS IoT Core's MQTT broker (``unkai up --mqtt-port``): the AWS IoT Device SDK v2 connects
over TLS with a certificate from CreateKeysAndCertificate; IoT policies decide connect,
publish, subscribe and receive with policy variables; unknown, inactive and revoked
certificates are refused; shadows, retained messages, presence events and rules work
over MQTT as over HTTPS; just-in-time registration; a malformed packet closes only its
own connection."""

from __future__ import annotations

import datetime as dt
import json
import queue
import socket
import ssl
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.iot_support import broker, iot, mqtt_server  # noqa: F401 (fixtures)

ROLE = "arn:aws:iam::000000000000:role/iot"
WAIT = 10


unkai = mqtt_server("iot-mqtt")


def node_policy(iot) -> str:
    """The talk's node policy shape: a device may only use its own thing name and topics."""
    name = f"node-{uuid.uuid4().hex[:6]}"
    iot.create_policy(policyName=name, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
            "arn:aws:iot:*:*:topic/post/${iot:Connection.Thing.ThingName}/*",
            "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
            "arn:aws:iot:*:*:topicfilter/post/${iot:Connection.Thing.ThingName}/*",
            "arn:aws:iot:*:*:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
    ]}))
    return name


def device(iot, tmp_path: Path, policy: str | None = None) -> dict:
    thing = f"box-{uuid.uuid4().hex[:6]}"
    out = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=out["certificateArn"])
    iot.attach_policy(policyName=policy or node_policy(iot), target=out["certificateArn"])
    cert, key = tmp_path / f"{thing}.pem", tmp_path / f"{thing}.key"
    cert.write_text(out["certificatePem"])
    key.write_text(out["keyPair"]["PrivateKey"])
    return {"thing": thing, "cert": cert, "key": key, "id": out["certificateId"], "arn": out["certificateArn"]}


class Paho:
    """A paho client with TLS client certificates, its CONNACK and messages as queues."""

    def __init__(self, broker: dict, dev: dict, client_id: str | None = None) -> None:
        self.connack: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.closed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or dev["thing"])
        self.client.tls_set(ca_certs=str(broker["ca"]), certfile=str(dev["cert"]), keyfile=str(dev["key"]))
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connack.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.on_subscribe = lambda c, u, mid, codes, p=None: self.subacks.put(codes)
        self.client.on_disconnect = lambda *a: self.closed.set()
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


def test_the_device_sdk_connects_with_a_certificate_from_create_keys_and_certificate(iot, unkai, broker, tmp_path):
    from awscrt import mqtt
    from awsiot import mqtt_connection_builder

    dev = device(iot, tmp_path)
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    iot.create_topic_rule(ruleName=f"r_{uuid.uuid4().hex[:6]}", topicRulePayload={
        "sql": f"SELECT *, clientid() AS client, topic(3) AS kind FROM 'post/{dev['thing']}/+'",
        "actions": [{"sqs": {"queueUrl": url, "roleArn": ROLE}}]})
    conn = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost", port=broker["port"], cert_filepath=str(dev["cert"]), pri_key_filepath=str(dev["key"]),
        ca_filepath=str(broker["ca"]), client_id=dev["thing"], clean_session=True, keep_alive_secs=30)
    conn.connect().result(WAIT)
    try:
        got: queue.Queue = queue.Queue()
        sub, _ = conn.subscribe(f"post/{dev['thing']}/#", mqtt.QoS.AT_LEAST_ONCE,
                                callback=lambda topic, payload, **kw: got.put((topic, payload)))
        assert sub.result(WAIT)["qos"] == mqtt.QoS.AT_LEAST_ONCE
        pub, _ = conn.publish(f"post/{dev['thing']}/event", json.dumps({"parcel": "in"}), mqtt.QoS.AT_LEAST_ONCE)
        pub.result(WAIT)
        assert got.get(timeout=WAIT) == (f"post/{dev['thing']}/event", b'{"parcel": "in"}')
        # a message published over HTTPS reaches the MQTT subscriber
        unkai.client("iot-data").publish(topic=f"post/{dev['thing']}/command", payload=b"open", qos=1)
        assert got.get(timeout=WAIT) == (f"post/{dev['thing']}/command", b"open")
        body = json.loads(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]["Body"])
        assert body == {"parcel": "in", "client": dev["thing"], "kind": "event"}
    finally:
        conn.disconnect().result(WAIT)


def test_shadow_requests_over_mqtt_answer_on_accepted_and_delta(iot, unkai, broker, tmp_path):
    dev = device(iot, tmp_path)
    client = Paho(broker, dev)
    try:
        assert client.accepted()
        prefix = f"$aws/things/{dev['thing']}/shadow"
        assert client.subscribe(f"{prefix}/update/+")
        unkai.client("iot-data").update_thing_shadow(thingName=dev["thing"], payload=json.dumps({
            "state": {"desired": {"lock": "closed"}}}))
        got = {}
        while len(got) < 3:
            topic, payload, _ = client.messages.get(timeout=WAIT)
            got[topic.rsplit("/", 1)[1]] = json.loads(payload)
        assert got["delta"]["state"] == {"lock": "closed"} and got["accepted"]["version"] == 1
        client.client.publish(f"{prefix}/update", json.dumps({"state": {"reported": {"lock": "closed"}},
                                                              "clientToken": "t-1"}), qos=1)
        got = {}
        while len(got) < 2:  # accepted and documents; no delta is left
            topic, payload, _ = client.messages.get(timeout=WAIT)
            got[topic.rsplit("/", 1)[1]] = json.loads(payload)
        assert set(got) == {"accepted", "documents"} and got["accepted"]["clientToken"] == "t-1"
        shadow = json.loads(unkai.client("iot-data").get_thing_shadow(thingName=dev["thing"])["payload"].read())
        assert shadow["version"] == 2 and "delta" not in shadow["state"]
    finally:
        client.close()


def test_policies_decide_client_id_subscriptions_and_publishes(iot, broker, tmp_path):
    dev = device(iot, tmp_path)
    other_id = Paho(broker, dev, client_id="someone-else")
    try:
        assert not other_id.accepted()  # iot:Connect only for the thing's own name
    finally:
        other_id.close()
    client = Paho(broker, dev)
    try:
        assert client.accepted()
        assert not client.subscribe("post/another-box/#")
        assert client.subscribe(f"post/{dev['thing']}/#")
        client.client.publish("post/another-box/event", b"x", qos=1)
        assert client.closed.wait(WAIT)  # AWS closes the connection on an unauthorized publish
    finally:
        client.close()


def test_unknown_inactive_and_revoked_certificates_are_refused(iot, broker, tmp_path):
    dev = device(iot, tmp_path)
    iot.update_certificate(certificateId=dev["id"], newStatus="INACTIVE")
    client = Paho(broker, dev)
    try:
        assert not client.accepted()
    finally:
        client.close()
    iot.update_certificate(certificateId=dev["id"], newStatus="REVOKED")
    client = Paho(broker, dev)
    try:
        assert not client.accepted()
    finally:
        client.close()
    dev2 = device(iot, tmp_path)
    iot.update_certificate(certificateId=dev2["id"], newStatus="INACTIVE")
    iot.detach_thing_principal(thingName=dev2["thing"], principal=dev2["arn"])
    iot.detach_policy(policyName=iot.list_attached_policies(target=dev2["arn"])["policies"][0]["policyName"],
                      target=dev2["arn"])
    iot.delete_certificate(certificateId=dev2["id"])
    client = Paho(broker, dev2)
    try:
        assert not client.accepted()
    finally:
        client.close()


def test_retained_messages_reach_new_subscribers_and_presence_events_feed_rules(iot, unkai, broker, tmp_path):
    dev = device(iot, tmp_path)
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    iot.create_topic_rule(ruleName=f"r_{uuid.uuid4().hex[:6]}", topicRulePayload={
        "sql": f"SELECT eventType, clientId FROM '$aws/events/presence/+/{dev['thing']}'",
        "actions": [{"sqs": {"queueUrl": url, "roleArn": ROLE}}]})
    unkai.client("iot-data").publish(topic=f"post/{dev['thing']}/config", payload=b"v2", qos=1, retain=True)
    client = Paho(broker, dev)
    assert client.accepted()
    assert client.subscribe(f"post/{dev['thing']}/#")
    assert client.messages.get(timeout=WAIT) == (f"post/{dev['thing']}/config", b"v2", True)
    client.close()
    events = []
    while len(events) < 2:
        for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", []):
            events.append(json.loads(m["Body"]))
    assert events == [{"eventType": "connected", "clientId": dev["thing"]},
                      {"eventType": "disconnected", "clientId": dev["thing"]}]


def test_just_in_time_registration_registers_a_pending_certificate_and_announces_it(iot, unkai, broker, tmp_path):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "post maker CA")])
    now = dt.datetime.now(dt.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    ca_id = iot.register_ca_certificate(caCertificate=ca_pem, setAsActive=True, allowAutoRegistration=True,
                                        certificateMode="SNI_ONLY")["certificateId"]
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    iot.create_topic_rule(ruleName=f"jitr_{uuid.uuid4().hex[:6]}", topicRulePayload={
        "sql": "SELECT * FROM '$aws/events/certificates/registered/#'",
        "actions": [{"sqs": {"queueUrl": url, "roleArn": ROLE}}]})
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub-9")]))
            .issuer_name(name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    dev = {"thing": "hub-9", "cert": tmp_path / "hub.pem", "key": tmp_path / "hub.key"}
    dev["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca_pem.encode())
    dev["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    client = Paho(broker, dev)
    try:
        assert not client.accepted()  # the first connection registers the certificate, and fails
    finally:
        client.close()
    event = json.loads(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]["Body"])
    assert event["caCertificateId"] == ca_id and event["certificateStatus"] == "PENDING_ACTIVATION"
    cert_id = event["certificateId"]
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == \
        "PENDING_ACTIVATION"
    # what the talk's JITR function does: activate, make the thing, attach a policy
    iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    arn = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["certificateArn"]
    iot.create_thing(thingName="hub-9")
    iot.attach_thing_principal(thingName="hub-9", principal=arn)
    iot.attach_policy(policyName=node_policy(iot), target=arn)
    client = Paho(broker, dev)
    try:
        assert client.accepted()
    finally:
        client.close()


def test_a_malformed_packet_closes_only_its_own_connection(iot, broker, tmp_path):
    dev = device(iot, tmp_path)
    context = ssl.create_default_context(cafile=str(broker["ca"]))
    context.load_cert_chain(str(dev["cert"]), str(dev["key"]))
    with socket.create_connection(("127.0.0.1", broker["port"]), timeout=WAIT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"\x10\xff\xff\xff\xff\x7fgarbage")
            try:
                assert tls.recv(1024) in (b"",)
            except (ConnectionResetError, ssl.SSLError):
                pass
    client = Paho(broker, dev)
    try:
        assert client.accepted()
    finally:
        client.close()


def test_a_statement_with_an_unresolvable_variable_leaves_the_others_in_force(iot, broker, tmp_path):
    name = f"mixed-{uuid.uuid4().hex[:6]}"
    iot.create_policy(policyName=name, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/loose-*"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": "arn:aws:iot:*:*:topicfilter/${iot:Connection.Thing.ThingName}/*"}]}))
    out = iot.create_keys_and_certificate(setAsActive=True)  # attached to no thing: ThingName is unresolvable
    iot.attach_policy(policyName=name, target=out["certificateArn"])
    dev = {"thing": "loose-1", "cert": tmp_path / "l.pem", "key": tmp_path / "l.key"}
    dev["cert"].write_text(out["certificatePem"])
    dev["key"].write_text(out["keyPair"]["PrivateKey"])
    client = Paho(broker, dev)
    try:
        assert client.accepted()
        assert not client.subscribe("loose-1/#")
    finally:
        client.close()


def test_the_device_https_endpoint_publishes_and_reads_shadows_with_the_certificate(iot, unkai, broker, tmp_path):
    import http.client

    name = f"http-{uuid.uuid4().hex[:6]}"
    thing = f"box-{uuid.uuid4().hex[:6]}"
    # over HTTPS there is no client id, so no thing policy variable: the policy names the topics
    iot.create_policy(policyName=name, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"arn:aws:iot:*:*:topic/post/{thing}/*"},
        {"Effect": "Allow", "Action": ["iot:UpdateThingShadow", "iot:GetThingShadow"],
         "Resource": f"arn:aws:iot:*:*:thing/{thing}"}]}))
    dev = device(iot, tmp_path, policy=name)
    dev["thing"] = thing
    port = unkai.get("/_unkai/iot")["mqtt"]["httpsPort"]
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    iot.create_topic_rule(ruleName=f"r_{uuid.uuid4().hex[:6]}", topicRulePayload={
        "sql": f"SELECT *, principal() AS who FROM 'post/{dev['thing']}/+'",
        "actions": [{"sqs": {"queueUrl": url, "roleArn": ROLE}}]})

    def call(method: str, path: str, body: bytes = b"", cert: dict = dev) -> tuple[int, dict]:
        context = ssl.create_default_context(cafile=str(broker["ca"]))
        if cert:
            context.load_cert_chain(str(cert["cert"]), str(cert["key"]))
        conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=WAIT)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    status, answer = call("POST", f"/topics/post/{dev['thing']}/event?qos=1", b'{"parcel": "in"}')
    assert status == 200 and answer["message"] == "OK"
    body = json.loads(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]["Body"])
    assert body == {"parcel": "in", "who": dev["id"]}
    assert call("POST", "/topics/post/another-box/event", b"{}")[0] == 403  # the node policy's topics only
    assert call("POST", f"/topics/post/{dev['thing']}/event", b"{}", cert={})[0] == 403  # no certificate
    status, answer = call("POST", f"/things/{thing}/shadow", b'{"state": {"reported": {"lock": "closed"}}}')
    assert status == 200 and answer["version"] == 1
    status, answer = call("GET", f"/things/{thing}/shadow")
    assert status == 200 and answer["state"]["reported"] == {"lock": "closed"}
    assert call("DELETE", f"/things/{thing}/shadow")[0] == 403  # iot:DeleteThingShadow is not allowed
    iot.update_certificate(certificateId=dev["id"], newStatus="INACTIVE")
    assert call("POST", f"/topics/post/{dev['thing']}/event", b"{}")[0] == 403


# -- MQTT 5 (translated in front of amqtt, see unkai/services/iot/mqtt5.py) -----------------------


def test_the_device_sdk_mqtt5_client_connects_and_policies_answer_with_reason_codes(iot, unkai, broker, tmp_path):
    from concurrent.futures import Future

    from awscrt import mqtt5
    from awsiot import mqtt5_client_builder

    dev = device(iot, tmp_path)
    connected: Future = Future()
    got: queue.Queue = queue.Queue()
    client = mqtt5_client_builder.mtls_from_path(
        endpoint="localhost", port=broker["port"], cert_filepath=str(dev["cert"]), pri_key_filepath=str(dev["key"]),
        ca_filepath=str(broker["ca"]), client_id=dev["thing"],
        on_lifecycle_connection_success=lambda data: connected.set_result(data.connack_packet),
        on_lifecycle_connection_failure=lambda data: connected.set_exception(data.exception),
        on_publish_received=lambda data: got.put((data.publish_packet.topic, data.publish_packet.payload)))
    client.start()
    try:
        connack = connected.result(WAIT)
        assert connack.reason_code == mqtt5.ConnectReasonCode.SUCCESS
        assert connack.maximum_qos == mqtt5.QoS.AT_LEAST_ONCE  # as AWS IoT announces
        subscribed = client.subscribe(mqtt5.SubscribePacket(subscriptions=[
            mqtt5.Subscription(f"post/{dev['thing']}/#", mqtt5.QoS.AT_LEAST_ONCE),
            mqtt5.Subscription("post/someone-else/#", mqtt5.QoS.AT_LEAST_ONCE)])).result(WAIT)
        assert subscribed.reason_codes == [mqtt5.SubackReasonCode.GRANTED_QOS_1,
                                           mqtt5.SubackReasonCode.NOT_AUTHORIZED]
        published = client.publish(mqtt5.PublishPacket(topic=f"post/{dev['thing']}/event", payload=b"five",
                                                       qos=mqtt5.QoS.AT_LEAST_ONCE)).result(WAIT)
        assert published.puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        assert got.get(timeout=WAIT) == (f"post/{dev['thing']}/event", b"five")
        unkai.client("iot-data").publish(topic=f"post/{dev['thing']}/command", payload=b"open", qos=1)
        assert got.get(timeout=WAIT) == (f"post/{dev['thing']}/command", b"open")
        unsubscribed = client.unsubscribe(mqtt5.UnsubscribePacket(
            topic_filters=[f"post/{dev['thing']}/#"])).result(WAIT)
        assert unsubscribed.reason_codes == [mqtt5.UnsubackReasonCode.SUCCESS]
    finally:
        client.stop()


class Paho5(Paho):
    """paho speaking MQTT 5: CONNACK's reason code and properties, DISCONNECT's reason code."""

    def __init__(self, broker: dict, dev: dict, client_id: str | None = None) -> None:
        self.connack: queue.Queue = queue.Queue()
        self.disconnects: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=dev["thing"] if client_id is None
                                  else client_id, protocol=paho.MQTTv5)
        self.client.tls_set(ca_certs=str(broker["ca"]), certfile=str(dev["cert"]), keyfile=str(dev["key"]))
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connack.put((rc, p))
        self.client.on_disconnect = lambda c, u, f, rc, p=None: self.disconnects.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.on_subscribe = lambda c, u, mid, codes, p=None: self.subacks.put(codes)
        self.client.connect("localhost", broker["port"])
        self.client.loop_start()


def test_mqtt5_refusals_carry_reason_codes(iot, broker, tmp_path):
    dev = device(iot, tmp_path)
    client = Paho5(broker, dev)
    try:
        reason, _ = client.connack.get(timeout=WAIT)
        assert not reason.is_failure
        client.client.publish("post/someone-else/event", b"x", qos=1)  # iot:Publish denied
        assert client.disconnects.get(timeout=WAIT).value == 0x87  # Not authorized, then closed
    finally:
        client.close()
    iot.update_certificate(certificateId=dev["id"], newStatus="REVOKED")
    client = Paho5(broker, dev)
    try:
        reason, _ = client.connack.get(timeout=WAIT)
        assert reason.value == 0x87
    finally:
        client.close()
    # an empty client id gets one assigned (the policy allows any client id)
    anyone = f"any-{uuid.uuid4().hex[:6]}"
    iot.create_policy(policyName=anyone, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}))
    dev2 = device(iot, tmp_path, policy=anyone)
    client = Paho5(broker, dev2, client_id="")
    try:
        reason, props = client.connack.get(timeout=WAIT)
        assert not reason.is_failure and props.AssignedClientIdentifier.startswith("unkai-")
        client.client.publish("anything", b"x", qos=2)  # AWS IoT has no QoS 2: a protocol error
        assert client.disconnects.get(timeout=WAIT).value == 0x9B  # QoS not supported
    finally:
        client.close()


def test_a_malformed_mqtt5_connect_is_answered_and_closed(iot, broker, tmp_path):
    dev = device(iot, tmp_path)
    context = ssl.create_default_context(cafile=str(broker["ca"]))
    context.load_cert_chain(str(dev["cert"]), str(dev["key"]))
    # a version 5 CONNECT whose properties claim more bytes than the packet has
    body = b"\x00\x04MQTT\x05\x02\x00\x3c\x20\x11"
    with socket.create_connection(("127.0.0.1", broker["port"]), timeout=WAIT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(bytes([0x10, len(body)]) + body)
            assert tls.recv(1024) == b"\x20\x03\x00\x81\x00"  # CONNACK: Malformed Packet
            assert tls.recv(1024) == b""


def test_jobs_over_mqtt_get_start_next_and_update_answer_on_accepted_and_rejected(iot, broker, tmp_path):
    name = f"jobs-{uuid.uuid4().hex[:6]}"
    things = "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"
    iot.create_policy(policyName=name, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": things},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": things.replace(":topic/", ":topicfilter/")}]}))
    dev = device(iot, tmp_path, policy=name)
    thing, prefix = dev["thing"], f"$aws/things/{dev['thing']}/jobs"
    job_id = f"fw-{uuid.uuid4().hex[:6]}"
    iot.create_job(jobId=job_id, targets=[iot.describe_thing(thingName=thing)["thingArn"]],
                   document=json.dumps({"firmware": "3.1"}))
    client = Paho(broker, dev)
    try:
        assert client.accepted()
        assert client.subscribe(f"{prefix}/#")

        def ask(topic: str, body: dict | bytes, answer: str) -> dict:
            client.client.publish(f"{prefix}/{topic}", body if isinstance(body, bytes) else json.dumps(body), qos=1)
            while True:
                got, payload, _ = client.messages.get(timeout=WAIT)
                if got == f"{prefix}/{topic}/{answer}":
                    return json.loads(payload)

        pending = ask("get", {"clientToken": "t1"}, "accepted")
        assert pending["clientToken"] == "t1" and [j["jobId"] for j in pending["queuedJobs"]] == [job_id]
        started = ask("start-next", {"clientToken": "t2", "statusDetails": {"step": "download"}}, "accepted")
        assert started["execution"]["status"] == "IN_PROGRESS"
        assert json.loads(started["execution"]["jobDocument"]) == {"firmware": "3.1"}
        version = started["execution"]["versionNumber"]
        stale = ask(f"{job_id}/update", {"status": "SUCCEEDED", "expectedVersion": version + 5, "clientToken": "t3"},
                    "rejected")
        assert stale["code"] == "VersionMismatch" and stale["executionState"]["status"] == "IN_PROGRESS"
        assert ask(f"{job_id}/update", b"{not json", "rejected")["code"] == "InvalidJson"
        done = ask(f"{job_id}/update", {"status": "SUCCEEDED", "expectedVersion": version,
                                        "includeJobExecutionState": True, "clientToken": "t4"}, "accepted")
        assert done["executionState"]["status"] == "SUCCEEDED" and done["clientToken"] == "t4"
        assert ask(f"{job_id}/get", {}, "accepted")["execution"]["status"] == "SUCCEEDED"
        assert ask("nope-job/get", {}, "rejected")["code"] == "ResourceNotFound"
    finally:
        client.close()
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "COMPLETED"


def test_a_client_silent_past_its_keep_alive_is_disconnected(iot, broker, tmp_path):
    dev = device(iot, tmp_path)
    context = ssl.create_default_context(cafile=str(broker["ca"]))
    context.load_cert_chain(str(dev["cert"]), str(dev["key"]))
    thing = dev["thing"].encode()
    connect = b"\x00\x04MQTT\x04\x02\x00\x01" + len(thing).to_bytes(2, "big") + thing  # keep-alive: 1 s
    with socket.create_connection(("127.0.0.1", broker["port"]), timeout=WAIT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(bytes([0x10, len(connect)]) + connect)
            assert tls.recv(4) == b"\x20\x02\x00\x00"
            topic = f"post/{dev['thing']}/beat".encode()
            tls.sendall(bytes([0x32, len(topic) + 4]) + len(topic).to_bytes(2, "big") + topic + b"\x00\x07")
            assert tls.recv(4) == b"\x40\x02\x00\x07"  # PUBACK, once the message is committed
            # then nothing: after 1.5 keep-alives the broker closes the connection
            assert tls.recv(1024) == b""


def test_a_dynamic_groups_policy_follows_the_things_registry_entry(iot, broker, tmp_path):
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    suffix = uuid.uuid4().hex[:6]
    connect_only = f"connect-{suffix}"
    iot.create_policy(policyName=connect_only, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}))
    group = iot.create_dynamic_thing_group(thingGroupName=f"fleet-{suffix}", queryString=f"attributes.fleet:{suffix}")
    iot.create_policy(policyName=f"fleet-{suffix}", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"arn:aws:iot:*:*:topicfilter/{suffix}/*"}]}))
    iot.attach_policy(policyName=f"fleet-{suffix}", target=group["thingGroupArn"])
    dev = device(iot, tmp_path, policy=connect_only)
    client = Paho(broker, dev)
    try:
        assert client.accepted()
        assert not client.subscribe(f"{suffix}/a")  # not in the group: only iot:Connect
        iot.update_thing(thingName=dev["thing"], attributePayload={"attributes": {"fleet": suffix}})
        assert client.subscribe(f"{suffix}/b")  # the group's query selects it now, and its policy applies
        iot.update_thing(thingName=dev["thing"], attributePayload={"attributes": {"fleet": "other"}})
        assert not client.subscribe(f"{suffix}/c")
    finally:
        client.close()
        iot.detach_policy(policyName=f"fleet-{suffix}", target=group["thingGroupArn"])
        iot.delete_dynamic_thing_group(thingGroupName=f"fleet-{suffix}")


def test_malformed_packets_after_connect_close_only_their_connection(iot, broker, tmp_path):
    dev = device(iot, tmp_path)
    context = ssl.create_default_context(cafile=str(broker["ca"]))
    context.load_cert_chain(str(dev["cert"]), str(dev["key"]))
    thing = dev["thing"].encode()
    v5 = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + len(thing).to_bytes(2, "big") + thing
    v3 = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(thing).to_bytes(2, "big") + thing
    cases = [
        (v5, b"\x82\x06\x00\x01\x09\x00\x00\x00", b"\xe0\x02\x81\x00"),  # SUBSCRIBE, properties overrun
        (v5, b"\x30\x04\x00\x09ab", b"\xe0\x02\x81\x00"),  # PUBLISH, topic overruns the packet
        (v5, b"\xf0\x00", b"\xe0\x02\x8c\x00"),  # AUTH: enhanced authentication is not served
        (v3, b"\x30\x04\x00\x09ab", b""),  # 3.1.1: just closed
    ]
    for connect, bad, answer in cases:
        with socket.create_connection(("127.0.0.1", broker["port"]), timeout=WAIT) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(bytes([0x10, len(connect)]) + connect)
                assert tls.recv(1)[0] == 0x20
                tls.recv(1024)  # the rest of CONNACK
                tls.sendall(bad)
                got = b""
                try:
                    while chunk := tls.recv(1024):
                        got += chunk
                except (ConnectionResetError, ssl.SSLError):
                    pass
                assert got == answer
    client = Paho(broker, dev)
    try:
        assert client.accepted()
    finally:
        client.close()


def test_a_second_connection_with_the_same_client_id_takes_over_and_keeps_working(iot, broker, tmp_path):
    dev = device(iot, tmp_path)
    first = Paho(broker, dev)
    assert first.accepted()
    first.client.reconnect_delay_set(min_delay=60, max_delay=60)  # it must not come back and take over again
    second = Paho(broker, dev)  # the same client id: the first connection is dropped, as AWS does
    try:
        assert second.accepted()
        assert first.closed.wait(WAIT)
        first.client.loop_stop()
        assert second.subscribe(f"post/{dev['thing']}/#")
        second.client.publish(f"post/{dev['thing']}/after", b"still here", qos=1)
        assert second.messages.get(timeout=WAIT)[:2] == (f"post/{dev['thing']}/after", b"still here")
    finally:
        second.close()
