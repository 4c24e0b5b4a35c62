"""SNS state and fan-out survive ``kill -9``: every acknowledged publish's messages are
in every subscribed queue after a restart on the same state directory."""

from __future__ import annotations

import json
import threading

from unkai.testing import UnkaiServer

from sns_support import drain_queue, queue
from test_sns_delivery import verify_signature


def test_acknowledged_publishes_survive_kill_9(tmp_path):
    server = UnkaiServer(tmp_path / "state").start()
    try:
        sns, sqs = server.client("sns"), server.client("sqs")
        arn = sns.create_topic(Name="orders")["TopicArn"]
        queues = []
        for i in range(3):
            url, queue_arn = queue(sqs, f"orders-{i}")
            sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
            queues.append(f"orders-{i}")
        acked: list[str] = []
        halfway = threading.Event()

        def publish() -> None:
            client = server.client("sns")
            for i in range(400):
                try:
                    acked.append(client.publish(TopicArn=arn, Message=f"order {i}")["MessageId"])
                except Exception:  # the server is gone
                    return
                if len(acked) == 150:
                    halfway.set()

        publisher = threading.Thread(target=publish)
        publisher.start()
        assert halfway.wait(60)
        server.kill()
        publisher.join(30)
        assert 150 <= len(acked) < 400

        server.start()
        sns, sqs = server.client("sns"), server.client("sqs")
        (sub_count,) = {sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsConfirmed"]}
        assert sub_count == "3"
        for queue_name in queues:
            url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            received = [json.loads(m["Body"]) for m in drain_queue(sqs, url)]
            assert set(acked) <= {doc["MessageId"] for doc in received}
        doc = received[0]  # signed before the kill; the restarted server (on another port) serves the same key
        doc["SigningCertURL"] = server.endpoint + "/_unkai/" + doc["SigningCertURL"].split("/_unkai/", 1)[1]
        verify_signature(doc)
    finally:
        server.kill()
