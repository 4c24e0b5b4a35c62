"""MQTT 5 message properties through AWS IoT Core's broker: user properties, content type,
payload format indicator, response topic, correlation data and message expiry travel from an
MQTT 5 publisher, from HTTPS Publish and from a republish action's headers to MQTT 5
subscribers (paho's MQTT 5 client, the Device SDK's mqtt5 client), not to 3.1.1 ones;
retained messages keep them; expired retained and queued messages are not delivered (on
unkai's clock); rules read them with get_mqtt_property() and get_user_properties()."""

from __future__ import annotations

import base64
import json
import queue
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.iot_support import broker, iot, mqtt_server  # noqa: F401 (fixtures)

WAIT = 10
ROLE = "arn:aws:iam::000000000000:role/iot"


unkai = mqtt_server("iot-mqtt5")


@pytest.fixture(scope="module")
def data(unkai):
    return unkai.client("iot-data")


@pytest.fixture(scope="module")
def policy(iot) -> str:
    name = f"open-{uuid.uuid4().hex[:6]}"
    iot.create_policy(policyName=name, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))
    return name


def device(iot, tmp_path: Path, policy: str) -> dict:
    thing = f"dev-{uuid.uuid4().hex[:6]}"
    out = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=policy, target=out["certificateArn"])
    cert, key = tmp_path / f"{thing}.pem", tmp_path / f"{thing}.key"
    cert.write_text(out["certificatePem"])
    key.write_text(out["keyPair"]["PrivateKey"])
    return {"thing": thing, "cert": cert, "key": key}


class Client:
    """A paho client (MQTT 5 or 3.1.1) whose messages arrive on a queue with their properties."""

    def __init__(self, broker: dict, dev: dict, version: int = paho.MQTTv5, client_id: str | None = None,
                 clean: bool = True, expiry: int = 0) -> None:
        self.messages: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.connack: queue.Queue = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or dev["thing"],
                                  protocol=version)
        self.client.tls_set(ca_certs=str(broker["ca"]), certfile=str(dev["cert"]), keyfile=str(dev["key"]))
        self.present: queue.Queue = queue.Queue()  # CONNACK's Session Present flag
        self.client.on_connect = lambda c, u, f, rc, p=None: (self.present.put(f.session_present),
                                                              self.connack.put(rc))
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda c, u, mid, codes, p=None: self.subacks.put(codes)
        if version == paho.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            if expiry:
                props.SessionExpiryInterval = expiry
            self.client.connect("localhost", broker["port"], clean_start=clean, properties=props)
        else:
            self.client.connect("localhost", broker["port"])
        self.client.loop_start()
        assert not self.connack.get(timeout=WAIT).is_failure

    def subscribe(self, topic_filter: str) -> None:
        self.client.subscribe(topic_filter, qos=1)
        assert not self.subacks.get(timeout=WAIT)[0].is_failure

    def next(self) -> paho.MQTTMessage:
        return self.messages.get(timeout=WAIT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_properties(**values) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def test_an_mqtt5_publishers_properties_reach_mqtt5_subscribers_and_not_mqtt311_ones(iot, broker, policy, tmp_path):
    topic = f"props/{uuid.uuid4().hex[:6]}/reading"
    v5 = Client(broker, device(iot, tmp_path, policy))
    v3 = Client(broker, device(iot, tmp_path, policy), version=paho.MQTTv311)
    sender = Client(broker, device(iot, tmp_path, policy))
    try:
        v5.subscribe(topic)
        v3.subscribe(topic)
        props = publish_properties(UserProperty=[("device", "alpha"), ("unit", "C"), ("unit", "F")],
                                   ContentType="application/json", PayloadFormatIndicator=1,
                                   ResponseTopic="props/replies", CorrelationData=b"\x00req-1",
                                   MessageExpiryInterval=300)
        sender.client.publish(topic, b'{"t": 21}', qos=1, properties=props).wait_for_publish(WAIT)
        got = v5.next()
        assert (got.topic, got.payload) == (topic, b'{"t": 21}')
        p = got.properties
        assert p.UserProperty == [("device", "alpha"), ("unit", "C"), ("unit", "F")]
        assert (p.ContentType, p.PayloadFormatIndicator, p.ResponseTopic, p.CorrelationData) == \
            ("application/json", 1, "props/replies", b"\x00req-1")
        assert 0 < p.MessageExpiryInterval <= 300
        plain = v3.next()  # the same message, as MQTT 3.1.1 carries it: no properties
        assert (plain.topic, plain.payload) == (topic, b'{"t": 21}')

        # a topic alias set by the first PUBLISH names the topic in the next one; no properties
        # this time, so none arrive
        sender.client.publish(topic, b"aliased", qos=1,
                              properties=publish_properties(TopicAlias=3)).wait_for_publish(WAIT)
        sender.client.publish("", b"by alias", qos=1,
                              properties=publish_properties(TopicAlias=3)).wait_for_publish(WAIT)
        for payload in (b"aliased", b"by alias"):
            got = v5.next()
            assert (got.topic, got.payload) == (topic, payload)
            assert not hasattr(got.properties, "UserProperty") and not hasattr(got.properties, "ContentType")
            assert v3.next().payload == payload
    finally:
        for c in (v5, v3, sender):
            c.close()


def test_https_publish_properties_and_a_retained_messages_properties_and_expiry(iot, data, unkai, broker, policy,
                                                                                 tmp_path):
    topic = f"props/{uuid.uuid4().hex[:6]}/config"
    live = Client(broker, device(iot, tmp_path, policy))
    try:
        live.subscribe(topic)
        data.publish(topic=topic, qos=1, retain=True, payload=b"v1",
                     userProperties=json.dumps([{"deviceName": "alpha"}, {"deviceCnt": "45"}]),
                     payloadFormatIndicator="UTF8_DATA", contentType="text/plain", responseTopic="props/answer",
                     correlationData=base64.b64encode(b"corr-7").decode(), messageExpiry=60)
        got = live.next()
        p = got.properties
        assert got.payload == b"v1"
        assert p.UserProperty == [("deviceName", "alpha"), ("deviceCnt", "45")]
        assert (p.ContentType, p.PayloadFormatIndicator, p.ResponseTopic, p.CorrelationData) == \
            ("text/plain", 1, "props/answer", b"corr-7")
        assert 0 < p.MessageExpiryInterval <= 60
    finally:
        live.close()

    kept = data.get_retained_message(topic=topic)
    assert kept["payload"] == b"v1"
    assert json.loads(kept["userProperties"]) == [{"deviceName": "alpha"}, {"deviceCnt": "45"}]

    unkai.advance(40)  # a new subscriber gets the retained copy with what remains of its 60 s
    later = Client(broker, device(iot, tmp_path, policy))
    try:
        later.subscribe(topic)
        got = later.next()
        assert got.payload == b"v1" and got.retain
        assert got.properties.ContentType == "text/plain"
        assert got.properties.UserProperty == [("deviceName", "alpha"), ("deviceCnt", "45")]
        assert 0 < got.properties.MessageExpiryInterval <= 20
    finally:
        later.close()

    unkai.advance(30)  # past its expiry: gone from the API and from new subscriptions
    with pytest.raises(data.exceptions.ResourceNotFoundException):
        data.get_retained_message(topic=topic)
    assert topic not in [t["topic"] for t in data.list_retained_messages()["retainedTopics"]]
    late = Client(broker, device(iot, tmp_path, policy))
    try:
        late.subscribe(topic)
        with pytest.raises(queue.Empty):
            late.messages.get(timeout=1)
    finally:
        late.close()


def test_https_publish_refuses_bad_property_values(data):
    for bad in ({"correlationData": "not base64!"}, {"userProperties": json.dumps({"not": "an array"})},
                {"responseTopic": "replies/#"}):
        with pytest.raises(data.exceptions.InvalidRequestException):
            data.publish(topic="props/bad", payload=b"x", **bad)
    with pytest.raises(Exception) as caught:  # botocore checks the enum's type only; unkai its value
        data.publish(topic="props/bad", payload=b"x", payloadFormatIndicator="UTF16")
    assert "InvalidRequestException" in str(caught.value) or "ParamValidation" in type(caught.value).__name__


def test_messages_queued_for_a_persistent_session_expire_on_the_clock(iot, data, unkai, broker, policy, tmp_path):
    topic = f"props/{uuid.uuid4().hex[:6]}/queued"
    dev = device(iot, tmp_path, policy)
    watcher = Client(broker, device(iot, tmp_path, policy))
    watcher.subscribe(f"$aws/events/presence/disconnected/{dev['thing']}")
    away = Client(broker, dev, clean=False, expiry=3600)
    away.subscribe(topic)
    away.close()
    watcher.next()  # the session is away before the messages come
    watcher.close()
    data.publish(topic=topic, qos=1, payload=b"short-lived", messageExpiry=10, contentType="text/plain")
    data.publish(topic=topic, qos=1, payload=b"lasting", messageExpiry=600, contentType="text/plain")
    data.publish(topic=topic, qos=1, payload=b"forever")
    unkai.advance(20)
    back = Client(broker, dev, clean=False, expiry=3600)
    try:
        got = [back.next(), back.next()]
        assert sorted(m.payload for m in got) == [b"forever", b"lasting"]
        lasting = next(m for m in got if m.payload == b"lasting")
        assert lasting.properties.ContentType == "text/plain"
        assert 0 < lasting.properties.MessageExpiryInterval <= 580
        with pytest.raises(queue.Empty):
            back.messages.get(timeout=1)
    finally:
        back.close()


def test_rules_read_mqtt5_properties_and_a_republish_action_sets_them(iot, broker, policy, tmp_path):
    source, target = f"props/{uuid.uuid4().hex[:6]}/in", f"props/{uuid.uuid4().hex[:6]}/out"
    name = f"props_{uuid.uuid4().hex[:6]}"
    iot.create_topic_rule(ruleName=name, topicRulePayload={
        "sql": "SELECT get_user_properties('unit') AS units, get_user_properties() AS every, "
               "get_user_properties('none') AS none, get_mqtt_property('content_type') AS ct, "
               "get_mqtt_property('format_indicator') AS fmt, get_mqtt_property('response_topic') AS rt, "
               f"get_mqtt_property('correlation_data') AS cd FROM '{source}'",
        "awsIotSqlVersion": "2016-03-23",
        "actions": [{"republish": {"roleArn": ROLE, "topic": target, "qos": 1, "headers": {
            "contentType": "application/json", "payloadFormatIndicator": "UTF8_DATA",
            "responseTopic": "${get_mqtt_property('response_topic')}",
            "correlationData": "${get_mqtt_property('correlation_data')}", "messageExpiry": "120",
            "userProperties": [{"key": "from", "value": "${topic()}"}, {"key": "rule", "value": name}]}}}]})
    sub = Client(broker, device(iot, tmp_path, policy))
    sender = Client(broker, device(iot, tmp_path, policy))
    try:
        sub.subscribe(target)
        props = publish_properties(UserProperty=[("unit", "C"), ("site", "b1"), ("unit", "F")],
                                   ContentType="text/csv", ResponseTopic="props/back", CorrelationData=b"\x01\x02")
        sender.client.publish(source, b"21,22", qos=1, properties=props).wait_for_publish(WAIT)
        got = sub.next()
        assert json.loads(got.payload) == {
            "units": ["C", "F"], "every": [{"unit": "C"}, {"site": "b1"}, {"unit": "F"}], "ct": "text/csv",
            "fmt": "UNSPECIFIED_BYTES", "rt": "props/back", "cd": base64.b64encode(b"\x01\x02").decode()}
        p = got.properties
        assert (p.ContentType, p.PayloadFormatIndicator, p.ResponseTopic, p.CorrelationData) == \
            ("application/json", 1, "props/back", b"\x01\x02")
        assert p.UserProperty == [("from", source), ("rule", name)]
        assert 0 < p.MessageExpiryInterval <= 120
    finally:
        sub.close()
        sender.close()


def raw(value: bytes | str | None) -> bytes | None:
    """The Device SDK hands correlation data back as text when it decodes as UTF-8."""
    return value.encode() if isinstance(value, str) else value


def test_the_device_sdk_mqtt5_client_sends_and_receives_properties(iot, data, broker, policy, tmp_path):
    from concurrent.futures import Future

    from awscrt import mqtt5
    from awsiot import mqtt5_client_builder

    dev = device(iot, tmp_path, policy)
    topic = f"props/{uuid.uuid4().hex[:6]}/sdk"
    connected: Future = Future()
    got: queue.Queue = queue.Queue()
    client = mqtt5_client_builder.mtls_from_path(
        endpoint="localhost", port=broker["port"], cert_filepath=str(dev["cert"]), pri_key_filepath=str(dev["key"]),
        ca_filepath=str(broker["ca"]), client_id=dev["thing"],
        on_lifecycle_connection_success=lambda d: connected.set_result(d.connack_packet),
        on_lifecycle_connection_failure=lambda d: connected.set_exception(d.exception),
        on_publish_received=lambda d: got.put(d.publish_packet))
    client.start()
    try:
        connected.result(WAIT)
        client.subscribe(mqtt5.SubscribePacket(subscriptions=[
            mqtt5.Subscription(topic, mqtt5.QoS.AT_LEAST_ONCE)])).result(WAIT)
        client.publish(mqtt5.PublishPacket(
            topic=topic, payload=b"ping", qos=mqtt5.QoS.AT_LEAST_ONCE, content_type="text/plain",
            payload_format_indicator=mqtt5.PayloadFormatIndicator.AWS_MQTT5_PFI_UTF8, response_topic=f"{topic}/reply",
            correlation_data=b"sdk-1", message_expiry_interval_sec=90,
            user_properties=[mqtt5.UserProperty("k", "v")])).result(WAIT)
        packet = got.get(timeout=WAIT)
        assert (packet.payload, packet.content_type, packet.response_topic, raw(packet.correlation_data)) == \
            (b"ping", "text/plain", f"{topic}/reply", b"sdk-1")
        assert packet.payload_format_indicator == mqtt5.PayloadFormatIndicator.AWS_MQTT5_PFI_UTF8
        assert [(p.name, p.value) for p in packet.user_properties] == [("k", "v")]
        assert 0 < packet.message_expiry_interval_sec <= 90
        # the request/response pattern: the answer goes to the request's response topic with its
        # correlation data (here over HTTPS Publish)
        client.subscribe(mqtt5.SubscribePacket(subscriptions=[
            mqtt5.Subscription(packet.response_topic, mqtt5.QoS.AT_LEAST_ONCE)])).result(WAIT)
        data.publish(topic=packet.response_topic, qos=1, payload=b"pong",
                     correlationData=base64.b64encode(raw(packet.correlation_data)).decode())
        answer = got.get(timeout=WAIT)
        assert (answer.topic, answer.payload, raw(answer.correlation_data)) == (f"{topic}/reply", b"pong", b"sdk-1")
    finally:
        client.stop()


def test_a_shared_subscription_gives_each_message_to_one_member_of_its_group(iot, data, broker, policy, tmp_path):
    base = f"jobs{uuid.uuid4().hex[:6]}"
    members = [Client(broker, device(iot, tmp_path, policy)), Client(broker, device(iot, tmp_path, policy)),
               Client(broker, device(iot, tmp_path, policy), version=paho.MQTTv311)]
    everyone = Client(broker, device(iot, tmp_path, policy))
    try:
        # a retained message goes to a new ordinary subscription, not to a shared one
        data.publish(topic=f"{base}/retained", payload=b"kept", retain=True)
        for member in members:
            member.subscribe(f"$share/workers/{base}/+")  # MQTT 5 and 3.1.1 members alike
        everyone.subscribe(f"{base}/+")
        members[0].client.subscribe(f"$share//{base}/+", qos=1)  # no share name
        assert members[0].subacks.get(timeout=WAIT)[0].value == 0x8F  # Topic Filter invalid
        sent = [f"m{i}".encode() for i in range(9)]
        for payload in sent:
            data.publish(topic=f"{base}/x", qos=1, payload=payload)
        assert sorted(everyone.next().payload for _ in range(10)) == sorted([b"kept", *sent])
        got = [[m.payload for m in drain(member)] for member in members]
        assert sorted(p for share in got for p in share) == sorted(sent)  # each message once in the group
        assert all(share for share in got)  # and every member gets its turn
    finally:
        for c in (*members, everyone):
            c.close()


def drain(client: Client) -> list:
    out = []
    while True:
        try:
            out.append(client.messages.get(timeout=1))
        except queue.Empty:
            return out


def test_a_persistent_session_that_stays_away_past_its_expiry_is_gone(iot, data, unkai, broker, policy, tmp_path):
    topic = f"props/{uuid.uuid4().hex[:6]}/session"
    dev = device(iot, tmp_path, policy)
    watcher = Client(broker, device(iot, tmp_path, policy))
    watcher.subscribe(f"$aws/events/presence/disconnected/{dev['thing']}")
    away = Client(broker, dev, clean=False, expiry=60)
    away.subscribe(topic)
    away.close()
    watcher.next()
    data.publish(topic=topic, qos=1, payload=b"while away")
    unkai.advance(61)  # past the Session Expiry Interval: the session, its subscription and queue are gone
    back = Client(broker, dev, clean=False, expiry=60)
    try:
        assert back.present.get(timeout=WAIT) is False
        with pytest.raises(queue.Empty):
            back.messages.get(timeout=1)
        data.publish(topic=topic, qos=1, payload=b"after")  # no subscription survives either
        with pytest.raises(queue.Empty):
            back.messages.get(timeout=1)
    finally:
        back.close()
        watcher.close()


def test_a_new_connection_gets_retained_messages_only_for_its_own_subscriptions(iot, data, broker, policy, tmp_path):
    base = f"leak{uuid.uuid4().hex[:6]}"
    first = Client(broker, device(iot, tmp_path, policy))
    try:
        first.subscribe(f"{base}/+")
        data.publish(topic=f"{base}/a", payload=b"retained", retain=True)
        assert first.next().payload == b"retained"
        later = Client(broker, device(iot, tmp_path, policy), version=paho.MQTTv311)
        try:
            with pytest.raises(queue.Empty):  # another client's filter is not this one's
                later.messages.get(timeout=1)
            later.subscribe(f"{base}/+")
            got = later.next()
            assert (got.payload, got.retain) == (b"retained", True)
        finally:
            later.close()
    finally:
        first.close()
