"""The smart delivery box, end to end, in the talk's E2E structure: each test starts from
the business steps it needs, done by fixtures (conftest.py)."""

import json
import uuid
from typing import List

import boto3
import pytest
from conftest import (DownloadCertFixture, HubRegisterFixture, IotThingNodeRegisterFixture, JitFixture,
                      SignUpFixture, SsmParameters, TaskFixture, connect, eventually, http_publish, invoke)


class TestNodeRegister:
    @pytest.mark.usefixtures('download_cert_fixture', 'signup_fixture', 'task_fixture', 'jit_second_fixture',
                             'iot_thing_hub_register_fixture', 'iot_thing_nodes_register_fixture')
    def test_iot_nodes_register_finished(
            self, ssm_parameters: SsmParameters, signup_fixture: SignUpFixture, task_fixture: TaskFixture,
            jit_second_fixture: JitFixture, iot_thing_hub_register_fixture: HubRegisterFixture,
            iot_thing_nodes_register_fixture: List[IotThingNodeRegisterFixture]):
        iot = boto3.client("iot")
        hub = iot_thing_hub_register_fixture
        task = boto3.resource("dynamodb").Table(ssm_parameters.get("smart-post/task_table")).get_item(
            Key={"task_uuid": task_fixture.task_uuid})["Item"]
        assert task["status"] == "finished" and task["reason"] == "NodeRegisterFinished"
        in_group = iot.list_things_in_thing_group(thingGroupName=hub.thing_group_name)["things"]
        for node in iot_thing_nodes_register_fixture:
            assert node.node_uuid in in_group
            thing = iot.describe_thing(thingName=node.node_uuid)
            assert thing["attributes"]["hub_uuid"] == hub.hub_uuid and thing["attributes"]["node_id"] == node.node_id
        assert iot.describe_thing(thingName=hub.hub_uuid)["attributes"]["nodes"] == "2"
        cert_arn = iot.describe_certificate(certificateId=jit_second_fixture.certificate_id)[
            "certificateDescription"]["certificateArn"]
        policies = [p["policyName"] for p in iot.list_attached_policies(target=cert_arn)["policies"]]
        node_policy = next(p for p in policies if p.startswith("nodes-"))
        document = json.loads(iot.get_policy(policyName=node_policy)["policyDocument"])
        resources = document["Statement"][0]["Resource"]
        assert sorted(r.rsplit("/", 2)[1] for r in resources) == sorted(
            n.node_uuid for n in iot_thing_nodes_register_fixture)
        device = boto3.resource("dynamodb").Table(ssm_parameters.get("smart-post/device_table")).get_item(
            Key={"device_id": signup_fixture.device_id})["Item"]
        assert device["hub_uuid"] == hub.hub_uuid and device["status"] == "REGISTERED"


class TestEventTraffic:
    def test_box_events_over_mqtt_and_http_reach_kinesis_and_the_event_table(
            self, ssm_parameters: SsmParameters, mqtt_endpoint, download_cert_fixture: DownloadCertFixture,
            iot_thing_hub_register_fixture: HubRegisterFixture,
            iot_thing_nodes_register_fixture: List[IotThingNodeRegisterFixture]):
        from awscrt import mqtt

        hub = iot_thing_hub_register_fixture.hub_uuid
        box1, box2 = iot_thing_nodes_register_fixture
        mqtt_event, http_event = str(uuid.uuid4()), str(uuid.uuid4())
        connection = connect(mqtt_endpoint, download_cert_fixture.cert_path, download_cert_fixture.key_path,
                             download_cert_fixture.device_id)
        try:
            published, _ = connection.publish(f"post/{hub}/{box1.node_uuid}/events", json.dumps({
                "event_id": mqtt_event, "kind": "delivered"}), mqtt.QoS.AT_LEAST_ONCE)
            published.result(10)
        finally:
            connection.disconnect().result(10)
        # the IoT HTTP protocol: the hub POSTs the same kind of message with its certificate
        status, answer = http_publish(mqtt_endpoint, download_cert_fixture.cert_path, download_cert_fixture.key_path,
                                      f"post/{hub}/{box2.node_uuid}/events",
                                      json.dumps({"event_id": http_event, "kind": "collected"}).encode())
        assert status == 200, answer
        status, _ = http_publish(mqtt_endpoint, download_cert_fixture.cert_path, download_cert_fixture.key_path,
                                 f"post/{hub}/someone-elses-box/events", b"{}")
        assert status == 403  # the node policy names the hub's own boxes only
        table = boto3.resource("dynamodb").Table(ssm_parameters.get("smart-post/event_table"))
        item = eventually(lambda: table.get_item(Key={"node_uuid": box1.node_uuid, "event_id": mqtt_event}).get("Item"))
        assert item["kind"] == "delivered" and item["hub_uuid"] == hub
        item = eventually(lambda: table.get_item(Key={"node_uuid": box2.node_uuid, "event_id": http_event}).get("Item"))
        assert item["kind"] == "collected"
        kinesis = boto3.client("kinesis")
        stream = ssm_parameters.get("smart-post/event_stream")
        shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        ids = {json.loads(r["Data"])["event_id"]: r["PartitionKey"] for r in records}
        assert ids.get(mqtt_event) == hub and ids.get(http_event) == hub


class TestFailures:
    @pytest.mark.usefixtures('iot_thing_hub_register_fixture')
    def test_a_failed_node_registration_logs_an_error_record_and_raises(
            self, ssm_parameters: SsmParameters, signup_fixture: SignUpFixture, jit_second_fixture: JitFixture,
            iot_thing_hub_register_fixture: HubRegisterFixture):
        function = ssm_parameters.get("smart-post/nodes_register_function")
        task_uuid = str(uuid.uuid4())
        error, out = invoke(function, {
            "task_uuid": task_uuid, "device_id": signup_fixture.device_id, "code": "wrong-code",
            "hub_uuid": iot_thing_hub_register_fixture.hub_uuid, "certificate_id": jit_second_fixture.certificate_id,
            "nodes": [{"node_id": "box-9", "type": "post"}]})
        assert error == "Unhandled" and out["errorType"] == "SignInFailed"
        logs = boto3.client("logs")

        def error_records():
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}", filterPattern=task_uuid)["events"]
            return [json.loads(e["message"]) for e in events if e["message"].lstrip().startswith("{")]

        records = eventually(error_records)
        assert records and records[0]["level"] == "ERROR" and records[0]["log_event"] == "SignInFailed"
        assert records[0]["lambda_commit_id"] and "Traceback" in records[0]["traceback"]
        assert records[0]["param_hub_uuid"] == iot_thing_hub_register_fixture.hub_uuid
        task = boto3.resource("dynamodb").Table(ssm_parameters.get("smart-post/task_table")).get_item(
            Key={"task_uuid": task_uuid})["Item"]
        assert task["status"] == "started"  # never finished
