"""Certificates in AWS IoT."""

import boto3

IOT = boto3.client("iot")


def certificate_arn(certificate_id):
    return IOT.describe_certificate(certificateId=certificate_id)["certificateDescription"]["certificateArn"]


def activate(certificate_id):
    IOT.update_certificate(certificateId=certificate_id, newStatus="ACTIVE")


def attach_policy(policy_name, certificate_id):
    IOT.attach_policy(policyName=policy_name, target=certificate_arn(certificate_id))
