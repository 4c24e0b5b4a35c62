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
