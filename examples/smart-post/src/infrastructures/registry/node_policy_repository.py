"""The node policy of a hub's certificate: which boxes' event topics the hub may publish
to. A new registration adds a policy version (the oldest non-default one goes when five
exist, AWS's limit)."""

import json
import os

import boto3

from infrastructures.registry.certificate_repository import certificate_arn

IOT = boto3.client("iot")
REGION = os.environ.get("AWS_REGION", "us-east-1")


def _document(node_things):
    topics = [f"arn:aws:iot:{REGION}:{node_things.aws_account_id}:topic/post/{node_things.hub_uuid}/{n}/events"
              for n in sorted(node_things.all_node_uuids)]
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": topics}]})


def create_policy_for_nodes(node_things):
    document = _document(node_things)
    try:
        IOT.create_policy(policyName=node_things.policy_name, policyDocument=document)
        return
    except IOT.exceptions.ResourceAlreadyExistsException:
        pass
    versions = IOT.list_policy_versions(policyName=node_things.policy_name)["policyVersions"]
    if len(versions) >= 5:
        oldest = min((v for v in versions if not v["isDefaultVersion"]), key=lambda v: int(v["versionId"]))
        IOT.delete_policy_version(policyName=node_things.policy_name, policyVersionId=oldest["versionId"])
    IOT.create_policy_version(policyName=node_things.policy_name, policyDocument=document, setAsDefault=True)


def attach_policy(node_things):
    IOT.attach_policy(policyName=node_things.policy_name, target=certificate_arn(node_things.certificate_id))
