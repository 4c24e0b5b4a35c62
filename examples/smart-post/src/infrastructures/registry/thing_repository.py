"""Things and thing groups in AWS IoT's registry."""

import boto3

from infrastructures.registry.certificate_repository import certificate_arn

IOT = boto3.client("iot")


def create_hub(hub):
    IOT.create_thing(thingName=hub.hub_uuid, attributePayload={"attributes": {
        "device_id": hub.device_id, "kind": "hub", "nodes": "0"}})


def create_node(node):
    IOT.create_thing(thingName=node.node_uuid, attributePayload={"attributes": {
        "hub_uuid": node.hub_uuid, "node_id": node.node_id, "kind": node.node_type}})


def create_group(group_name):
    IOT.create_thing_group(thingGroupName=group_name)


def add_to_group(group_name, thing_name):
    IOT.add_thing_to_thing_group(thingGroupName=group_name, thingName=thing_name)


def attach_certificate(thing_name, certificate_id):
    IOT.attach_thing_principal(thingName=thing_name, principal=certificate_arn(certificate_id))


def things_in_group(group_name):
    names, token = [], None
    while True:
        page = IOT.list_things_in_thing_group(thingGroupName=group_name, **({"nextToken": token} if token else {}))
        names += page["things"]
        token = page.get("nextToken")
        if not token:
            return names


def update_hub_nodes(hub_uuid, count):
    IOT.update_thing(thingName=hub_uuid, attributePayload={"attributes": {"nodes": str(count)}, "merge": True})
