"""IoT's acknowledged writes survive ``kill -9``: every shadow update that was answered is
in the shadow after a restart, and every acknowledged publish's rule hand-off (here an
SQS message) and retained copy are there too."""

from __future__ import annotations

import json
import threading

from unkai.testing import UnkaiServer


def test_acknowledged_shadow_updates_and_rule_hand_offs_survive_kill_9(tmp_path):
    server = UnkaiServer(tmp_path / "state").start()
    try:
        sqs, iot = server.client("sqs"), server.client("iot")
        url = sqs.create_queue(QueueName="box-events")["QueueUrl"]
        iot.create_topic_rule(ruleName="events", topicRulePayload={
            "sql": "SELECT * FROM 'box/+/events'",
            "actions": [{"sqs": {"queueUrl": url, "roleArn": "arn:aws:iam::0:role/r"}}]})
        acked: list[int] = []
        halfway = threading.Event()

        def work() -> None:
            data = server.client("iot-data")
            for i in range(1, 300):
                try:
                    data.update_thing_shadow(thingName="box-1", payload=json.dumps({"state": {"reported": {"n": i}}}))
                    data.publish(topic="box/1/events", payload=json.dumps({"n": i}).encode(), qos=1, retain=True)
                except Exception:  # the server is gone
                    return
                acked.append(i)
                if len(acked) == 40:
                    halfway.set()

        worker = threading.Thread(target=work)
        worker.start()
        assert halfway.wait(60)
        server.kill()
        worker.join(30)
        assert 40 <= len(acked) < 299

        server.start()
        data, sqs = server.client("iot-data"), server.client("sqs")
        shadow = json.loads(data.get_thing_shadow(thingName="box-1")["payload"].read())
        assert shadow["state"]["reported"]["n"] >= acked[-1] and shadow["version"] >= len(acked)
        retained = json.loads(data.get_retained_message(topic="box/1/events")["payload"])
        assert retained["n"] >= acked[-1]
        seen = set()
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                seen.add(json.loads(m["Body"])["n"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        assert set(acked) <= seen
    finally:
        server.stop()


def test_mqtt_publishes_acknowledged_with_puback_survive_kill_9(tmp_path):
    """The broker's PUBACK follows the message's commit: every QoS 1 message a client saw
    acknowledged has had its rule hand-off stored when the server is killed."""
    import socket
    import ssl

    server = UnkaiServer(tmp_path / "state", "--mqtt-port", "0").start()
    try:
        sqs, iot = server.client("sqs"), server.client("iot")
        url = sqs.create_queue(QueueName="mqtt-events")["QueueUrl"]
        iot.create_topic_rule(ruleName="mqtt_events", topicRulePayload={
            "sql": "SELECT * FROM 'box/+/mqtt'",
            "actions": [{"sqs": {"queueUrl": url, "roleArn": "arn:aws:iam::0:role/r"}}]})
        iot.create_policy(policyName="all", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))
        out = iot.create_keys_and_certificate(setAsActive=True)
        iot.attach_policy(policyName="all", target=out["certificateArn"])
        info = server.get("/_unkai/iot")
        for name, text in (("ca.pem", info["caPem"]), ("box.pem", out["certificatePem"]),
                           ("box.key", out["keyPair"]["PrivateKey"])):
            (tmp_path / name).write_text(text)
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        context.load_cert_chain(str(tmp_path / "box.pem"), str(tmp_path / "box.key"))
        acked: list[int] = []
        halfway = threading.Event()

        def work() -> None:
            try:
                with socket.create_connection(("127.0.0.1", info["mqtt"]["port"]), timeout=30) as raw, \
                        context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"\x10\x11\x00\x04MQTT\x04\x02\x00\x3c\x00\x05box-1")
                    assert tls.recv(4) == b"\x20\x02\x00\x00"
                    topic = b"\x00\x0abox/1/mqtt"
                    for i in range(1, 2000):
                        body = json.dumps({"n": i}).encode()
                        tls.sendall(bytes([0x32, len(topic) + 2 + len(body)]) + topic + i.to_bytes(2, "big") + body)
                        if tls.recv(4) != b"\x40\x02" + i.to_bytes(2, "big"):
                            return
                        acked.append(i)
                        if len(acked) == 40:
                            halfway.set()
            except OSError:  # the server is gone
                return

        worker = threading.Thread(target=work)
        worker.start()
        assert halfway.wait(60)
        server.kill()
        worker.join(30)
        assert 40 <= len(acked) < 1999

        server.start()
        sqs = server.client("sqs")
        seen = set()
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                seen.add(json.loads(m["Body"])["n"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        assert set(acked) <= seen
    finally:
        server.stop()
