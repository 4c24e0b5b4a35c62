"""AWS IoT Core's control plane through boto3: things and attributes with expectedVersion,
thing types and groups, certificates issued by the local CA (real X.509 that verifies),
registered CA certificates, policies with versions and attachments, topic rules, the
endpoint, AWS's errors, and the AWS::IoT template resources."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TEMPLATE = """
        AWSTemplateFormatVersion: '2010-09-09'
        Resources:
          Hub:
            Type: AWS::IoT::Thing
            Properties:
              ThingName: tmpl-hub
              AttributePayload: {Attributes: {nodes: "0"}}
          HubGroup:
            Type: AWS::IoT::ThingGroup
            Properties:
              ThingGroupName: tmpl-group
          NodePolicy:
            Type: AWS::IoT::Policy
            Properties:
              PolicyName: tmpl-policy
              PolicyDocument:
                Version: '2012-10-17'
                Statement: [{Effect: Allow, Action: 'iot:Connect', Resource: '*'}]
          Events:
            Type: AWS::IoT::TopicRule
            Properties:
              RuleName: tmpl_rule
              TopicRulePayload:
                Sql: "SELECT * FROM 'tmpl/#'"
                RuleDisabled: false
                Actions:
                  - Republish: {Topic: 'copy/${topic()}', RoleArn: 'arn:aws:iam::000000000000:role/r', Qos: 1}
          Gatekeeper:
            Type: AWS::IoT::Authorizer
            Properties:
              AuthorizerName: tmpl-authorizer
              AuthorizerFunctionArn: arn:aws:lambda:us-east-1:000000000000:function:tmpl-auth
              SigningDisabled: true
              Status: INACTIVE
              Tags: [{Key: from, Value: template}]
        Outputs:
          HubArn: {Value: !GetAtt Hub.Arn}
          Group: {Value: !Ref HubGroup}
          PolicyArn: {Value: !GetAtt NodePolicy.Arn}
          RuleArn: {Value: !GetAtt Events.Arn}
          Authorizer: {Value: !Ref Gatekeeper}
          AuthorizerArn: {Value: !GetAtt Gatekeeper.Arn}
    """


@pytest.fixture(scope="module")
def unkai(tmp_path_factory):
    from unkai.testing import UnkaiServer

    base = tmp_path_factory.mktemp("iot")
    (base / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    with UnkaiServer(base / "state", str(base / "template.yaml")).start() as server:
        yield server


ALLOW_ALL = json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})


@pytest.fixture(scope="module")
def iot(unkai):
    return unkai.client("iot")


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_things_keep_attributes_and_refuse_a_stale_expected_version(iot):
    out = iot.create_thing(thingName="hub-1", attributePayload={"attributes": {"nodes": "0", "site": "tokyo"}})
    assert out["thingArn"].endswith(":thing/hub-1")
    # the same create again answers the same thing; different attributes conflict
    assert iot.create_thing(thingName="hub-1", attributePayload={
        "attributes": {"nodes": "0", "site": "tokyo"}})["thingId"] == out["thingId"]
    with pytest.raises(ClientError) as exc:
        iot.create_thing(thingName="hub-1", attributePayload={"attributes": {"nodes": "9"}})
    assert code(exc) == "ResourceAlreadyExistsException"
    thing = iot.describe_thing(thingName="hub-1")
    assert thing["version"] == 1 and thing["defaultClientId"] == "hub-1"
    iot.update_thing(thingName="hub-1", attributePayload={"attributes": {"nodes": "1", "site": ""}, "merge": True},
                     expectedVersion=1)
    thing = iot.describe_thing(thingName="hub-1")
    assert thing["attributes"] == {"nodes": "1"} and thing["version"] == 2
    with pytest.raises(ClientError) as exc:
        iot.update_thing(thingName="hub-1", attributePayload={"attributes": {"nodes": "2"}}, expectedVersion=1)
    assert code(exc) == "VersionConflictException"
    listed = iot.list_things(attributeName="nodes", attributeValue="1")["things"]
    assert [t["thingName"] for t in listed] == ["hub-1"]
    with pytest.raises(ClientError) as exc:
        iot.describe_thing(thingName="nope")
    assert code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        iot.create_thing(thingName="bad name!")
    assert code(exc) in ("InvalidRequestException", "ValidationException")


def test_thing_types_must_exist_and_deprecated_ones_take_no_new_things(iot, unkai):
    iot.create_thing_type(thingTypeName="Box", thingTypeProperties={"searchableAttributes": ["site"]})
    with pytest.raises(ClientError) as exc:
        iot.create_thing(thingName="t1", thingTypeName="Nope")
    assert code(exc) == "ResourceNotFoundException"
    iot.create_thing(thingName="t1", thingTypeName="Box")
    assert iot.list_things(thingTypeName="Box")["things"][0]["thingTypeName"] == "Box"
    iot.deprecate_thing_type(thingTypeName="Box")
    assert iot.describe_thing_type(thingTypeName="Box")["thingTypeMetadata"]["deprecated"] is True
    with pytest.raises(ClientError) as exc:
        iot.create_thing(thingName="t2", thingTypeName="Box")
    assert code(exc) == "InvalidRequestException"
    with pytest.raises(ClientError):  # not five minutes deprecated yet, and a thing still has it
        iot.delete_thing_type(thingTypeName="Box")
    iot.update_thing(thingName="t1", removeThingType=True)
    unkai.advance(301)
    iot.delete_thing_type(thingTypeName="Box")
    assert iot.list_thing_types()["thingTypes"] == []


def test_thing_groups_nest_and_list_their_things_recursively(iot):
    iot.create_thing_group(thingGroupName="region-a")
    iot.create_thing_group(thingGroupName="hub-group-1", parentGroupName="region-a",
                           thingGroupProperties={"attributePayload": {"attributes": {"hub": "hub-1"}}})
    for n in ("node-1", "node-2"):
        iot.create_thing(thingName=n)
        iot.add_thing_to_thing_group(thingGroupName="hub-group-1", thingName=n)
    assert iot.list_things_in_thing_group(thingGroupName="hub-group-1")["things"] == ["node-1", "node-2"]
    assert iot.list_things_in_thing_group(thingGroupName="region-a")["things"] == []
    assert iot.list_things_in_thing_group(thingGroupName="region-a", recursive=True)["things"] == ["node-1", "node-2"]
    group = iot.describe_thing_group(thingGroupName="hub-group-1")
    assert group["thingGroupMetadata"]["parentGroupName"] == "region-a"
    assert [g["groupName"] for g in group["thingGroupMetadata"]["rootToParentThingGroups"]] == ["region-a"]
    assert iot.update_thing_group(thingGroupName="hub-group-1", expectedVersion=1, thingGroupProperties={
        "thingGroupDescription": "box hub"})["version"] == 2
    with pytest.raises(ClientError) as exc:
        iot.update_thing_group(thingGroupName="hub-group-1", expectedVersion=1, thingGroupProperties={})
    assert code(exc) == "VersionConflictException"
    assert [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="node-1")["thingGroups"]] == [
        "hub-group-1"]
    assert [g["groupName"] for g in iot.list_thing_groups(parentGroup="region-a")["thingGroups"]] == ["hub-group-1"]
    iot.remove_thing_from_thing_group(thingGroupName="hub-group-1", thingName="node-2")
    assert iot.list_things_in_thing_group(thingGroupName="hub-group-1")["things"] == ["node-1"]
    with pytest.raises(ClientError) as exc:
        iot.delete_thing_group(thingGroupName="region-a")
    assert code(exc) == "InvalidRequestException"


def test_create_keys_and_certificate_issues_a_real_certificate_from_the_local_ca(iot, unkai):
    out = iot.create_keys_and_certificate(setAsActive=True)
    cert = x509.load_pem_x509_certificate(out["certificatePem"].encode())
    ca = x509.load_pem_x509_certificate(unkai.get("/_unkai/iot")["caPem"].encode())
    cert.verify_directly_issued_by(ca)
    key = serialization.load_pem_private_key(out["keyPair"]["PrivateKey"].encode(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert out["certificateId"] == cert.fingerprint(hashes.SHA256()).hex()
    desc = iot.describe_certificate(certificateId=out["certificateId"])["certificateDescription"]
    assert desc["status"] == "ACTIVE" and desc["certificatePem"] == out["certificatePem"]
    with pytest.raises(ClientError) as exc:
        iot.delete_certificate(certificateId=out["certificateId"])
    assert code(exc) == "CertificateStateException"
    iot.update_certificate(certificateId=out["certificateId"], newStatus="REVOKED")
    with pytest.raises(ClientError) as exc:
        iot.update_certificate(certificateId=out["certificateId"], newStatus="ACTIVE")
    assert code(exc) == "CertificateStateException"
    iot.delete_certificate(certificateId=out["certificateId"])
    with pytest.raises(ClientError) as exc:
        iot.describe_certificate(certificateId=out["certificateId"])
    assert code(exc) == "ResourceNotFoundException"


def _ca(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key, ca_cert, name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(1)).sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_certificates_register_against_a_registered_ca_and_csrs_are_signed(iot):
    ca_key, ca_cert = _ca("maker CA")
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(ClientError) as exc:
        iot.register_certificate(certificatePem=_leaf(ca_key, ca_cert, "d1"), caCertificatePem=ca_pem)
    assert code(exc) == "CertificateValidationException"
    ca = iot.register_ca_certificate(caCertificate=ca_pem, verificationCertificate=_leaf(ca_key, ca_cert, "proof"),
                                     setAsActive=True, allowAutoRegistration=True)
    with pytest.raises(ClientError) as exc:
        iot.register_ca_certificate(caCertificate=ca_pem, verificationCertificate=_leaf(ca_key, ca_cert, "p"))
    assert code(exc) == "ResourceAlreadyExistsException"
    assert iot.describe_ca_certificate(certificateId=ca["certificateId"])["certificateDescription"][
        "autoRegistrationStatus"] == "ENABLE"
    device = iot.register_certificate(certificatePem=_leaf(ca_key, ca_cert, "d1"), caCertificatePem=ca_pem,
                                      status="ACTIVE")
    desc = iot.describe_certificate(certificateId=device["certificateId"])["certificateDescription"]
    assert desc["caCertificateId"] == ca["certificateId"] and desc["status"] == "ACTIVE"
    assert [c["certificateId"] for c in iot.list_certificates_by_ca(caCertificateId=ca["certificateId"])[
        "certificates"]] == [device["certificateId"]]
    with pytest.raises(ClientError) as exc:
        iot.register_certificate(certificatePem="not a certificate")
    assert code(exc) == "CertificateValidationException"
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "from-csr")])).sign(key, hashes.SHA256()))
    out = iot.create_certificate_from_csr(certificateSigningRequest=csr.public_bytes(
        serialization.Encoding.PEM).decode(), setAsActive=True)
    assert x509.load_pem_x509_certificate(out["certificatePem"].encode()).public_key().public_numbers() == \
        key.public_key().public_numbers()


def test_policies_keep_five_versions_and_refuse_deletes_while_attached(iot):
    cert = iot.create_keys_and_certificate(setAsActive=True)
    with pytest.raises(ClientError) as exc:
        iot.create_policy(policyName="bad", policyDocument="{not json")
    assert code(exc) == "MalformedPolicyException"
    created = iot.create_policy(policyName="node-policy", policyDocument=ALLOW_ALL)
    assert created["policyVersionId"] == "1"
    with pytest.raises(ClientError) as exc:
        iot.create_policy(policyName="node-policy", policyDocument=ALLOW_ALL)
    assert code(exc) == "ResourceAlreadyExistsException"
    for i in range(2, 6):
        out = iot.create_policy_version(policyName="node-policy", policyDocument=ALLOW_ALL, setAsDefault=(i == 3))
        assert out["policyVersionId"] == str(i)
    with pytest.raises(ClientError) as exc:
        iot.create_policy_version(policyName="node-policy", policyDocument=ALLOW_ALL)
    assert code(exc) == "VersionsLimitExceededException"
    assert iot.get_policy(policyName="node-policy")["defaultVersionId"] == "3"
    with pytest.raises(ClientError) as exc:
        iot.delete_policy_version(policyName="node-policy", policyVersionId="3")
    assert code(exc) == "DeleteConflictException"
    versions = iot.list_policy_versions(policyName="node-policy")["policyVersions"]
    assert [v["versionId"] for v in versions if v["isDefaultVersion"]] == ["3"]
    iot.attach_policy(policyName="node-policy", target=cert["certificateArn"])
    iot.create_thing_group(thingGroupName="policy-group")
    iot.attach_policy(policyName="node-policy", target=iot.describe_thing_group(
        thingGroupName="policy-group")["thingGroupArn"])
    assert len(iot.list_targets_for_policy(policyName="node-policy")["targets"]) == 2
    assert iot.list_attached_policies(target=cert["certificateArn"])["policies"][0]["policyName"] == "node-policy"
    with pytest.raises(ClientError) as exc:
        iot.delete_policy(policyName="node-policy")
    assert code(exc) == "DeleteConflictException"
    iot.create_thing(thingName="cert-holder")
    iot.attach_thing_principal(thingName="cert-holder", principal=cert["certificateArn"])
    assert iot.list_principal_things(principal=cert["certificateArn"])["things"] == ["cert-holder"]
    with pytest.raises(ClientError) as exc:
        iot.delete_thing(thingName="cert-holder")
    assert code(exc) == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        iot.get_policy(policyName="missing")
    assert code(exc) == "ResourceNotFoundException"


def test_topic_rules_parse_their_sql_and_list_their_topic(iot):
    payload = {"sql": "SELECT state.reported.temp AS t, topic(2) AS box FROM 'post/+/events' WHERE t > 3",
               "actions": [{"republish": {"topic": "alerts/${topic(2)}", "roleArn": "arn:aws:iam::1:role/r"}}]}
    iot.create_topic_rule(ruleName="alerts", topicRulePayload=payload)
    with pytest.raises(ClientError) as exc:
        iot.create_topic_rule(ruleName="alerts", topicRulePayload=payload)
    assert code(exc) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        iot.create_topic_rule(ruleName="broken", topicRulePayload={"sql": "SELECT FROM WHERE", "actions": []})
    assert code(exc) == "SqlParseException"
    rules = iot.list_topic_rules(topic="post/+/events")["rules"]
    assert [(r["ruleName"], r["topicPattern"], r["ruleDisabled"]) for r in rules] == [
        ("alerts", "post/+/events", False)]
    iot.disable_topic_rule(ruleName="alerts")
    assert iot.get_topic_rule(ruleName="alerts")["rule"]["ruleDisabled"] is True
    iot.delete_topic_rule(ruleName="alerts")
    with pytest.raises(ClientError) as exc:
        iot.get_topic_rule(ruleName="alerts")
    assert code(exc) == "UnauthorizedException"


def test_describe_endpoint_answers_the_local_address(iot, unkai):
    address = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    assert unkai.endpoint.endswith(address)
    with pytest.raises(ClientError) as exc:
        iot.describe_endpoint(endpointType="iot:Nope")
    assert code(exc) == "InvalidRequestException"


def test_template_resources_create_things_policies_groups_rules_and_authorizers(unkai, iot):
    cfn = unkai.client("cloudformation")
    stack = cfn.list_stacks()["StackSummaries"][0]["StackName"]
    out = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    assert out["HubArn"] == iot.describe_thing(thingName="tmpl-hub")["thingArn"]
    assert out["Group"] == "tmpl-group"
    assert out["PolicyArn"] == iot.get_policy(policyName="tmpl-policy")["policyArn"]
    rule = iot.get_topic_rule(ruleName="tmpl_rule")
    assert rule["ruleArn"] == out["RuleArn"]
    assert rule["rule"]["actions"][0]["republish"] == {"topic": "copy/${topic()}", "qos": 1,
                                                      "roleArn": "arn:aws:iam::000000000000:role/r"}
    authorizer = iot.describe_authorizer(authorizerName=out["Authorizer"])["authorizerDescription"]
    assert (authorizer["authorizerName"], authorizer["authorizerArn"]) == ("tmpl-authorizer", out["AuthorizerArn"])
    assert (authorizer["status"], authorizer["signingDisabled"]) == ("INACTIVE", True)
    assert authorizer["authorizerFunctionArn"].endswith(":function:tmpl-auth")


# -- fleet indexing and dynamic thing groups ---------------------------------------------------


def search(iot, query: str, **kwargs) -> list[str]:
    return sorted(t["thingName"] for t in iot.search_index(queryString=query, **kwargs)["things"])


def test_fleet_indexing_searches_the_registry_and_shadows_with_aws_query_syntax(iot, unkai):
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"},
                                      thingGroupIndexingConfiguration={"thingGroupIndexingMode": "OFF"})
    with pytest.raises(ClientError) as exc:
        iot.search_index(queryString="thingName:*")
    assert code(exc) == "ResourceNotFoundException"
    assert "Please enable index by calling UpdateIndexingConfiguration" in exc.value.response["Error"]["Message"]
    iot.update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "REGISTRY_AND_SHADOW"},
        thingGroupIndexingConfiguration={"thingGroupIndexingMode": "ON"})
    config = iot.get_indexing_configuration()
    assert config["thingIndexingConfiguration"]["thingIndexingMode"] == "REGISTRY_AND_SHADOW"
    assert set(iot.list_indices()["indexNames"]) == {"AWS_Things", "AWS_ThingGroups"}
    assert iot.describe_index(indexName="AWS_Things")["schema"] == "REGISTRY_AND_SHADOW"
    for name, attrs in (("idx-a", {"temp": "75", "site": "tokyo"}), ("idx-b", {"temp": "82", "site": "osaka"}),
                        ("idx-c", {"temp": "60", "site": "nagoya"})):
        iot.create_thing(thingName=name, attributePayload={"attributes": {"suite": "idx", **attrs}})
    iot.create_thing_group(thingGroupName="idx-group", thingGroupProperties={
        "thingGroupDescription": "indexed", "attributePayload": {"attributes": {"floor": "3"}}})
    iot.add_thing_to_thing_group(thingGroupName="idx-group", thingName="idx-c")
    unkai.client("iot-data").update_thing_shadow(thingName="idx-a", payload=json.dumps(
        {"state": {"reported": {"battery": 90, "led": "off"}, "desired": {"led": "on"}}}))
    s = "attributes.suite:idx AND "
    assert search(iot, s + "attributes.temp:[70 TO 80]") == ["idx-a"]
    assert search(iot, s + "attributes.temp:{60 TO 75]") == ["idx-a"]
    assert search(iot, s + "attributes.temp>70") == ["idx-a", "idx-b"]
    assert search(iot, "thingName:idx-? -attributes.site:tokyo") == ["idx-b", "idx-c"]
    assert search(iot, s + "(attributes.site:TOKYO OR attributes.site:osaka)") == ["idx-a", "idx-b"]
    assert search(iot, s + "attributes.site:(tok* OR nag*)") == ["idx-a", "idx-c"]
    assert search(iot, "thingGroupNames:idx-group") == ["idx-c"]
    assert search(iot, "shadow.reported.battery>=90 AND shadow.hasDelta:true") == ["idx-a"]
    assert search(iot, s + "NOT shadow.reported.battery:*") == ["idx-b", "idx-c"]
    assert search(iot, "osaka") == ["idx-b"]  # a bare term searches every field
    found = iot.search_index(queryString="thingName:idx-a")["things"][0]
    assert found["attributes"] == {"suite": "idx", "temp": "75", "site": "tokyo"}
    assert json.loads(found["shadow"])["reported"] == {"battery": 90, "led": "off"}
    first = iot.search_index(queryString="thingName:idx-*", maxResults=2)
    assert len(first["things"]) == 2
    rest = iot.search_index(queryString="thingName:idx-*", maxResults=2, nextToken=first["nextToken"])
    assert len(rest["things"]) == 1 and "nextToken" not in rest
    groups = iot.search_index(indexName="AWS_ThingGroups", queryString="thingGroupName:idx-* attributes.floor:3")
    assert [(g["thingGroupName"], g["thingGroupDescription"]) for g in groups["thingGroups"]] == [
        ("idx-group", "indexed")]
    stats = iot.get_statistics(queryString="attributes.suite:idx", aggregationField="attributes.temp")["statistics"]
    assert (stats["count"], stats["minimum"], stats["maximum"], stats["sum"]) == (3, 60, 82, 217)
    assert iot.get_statistics(queryString="attributes.suite:idx")["statistics"] == {"count": 3}
    assert iot.get_cardinality(queryString="thingName:idx-*", aggregationField="attributes.site")["cardinality"] == 3
    with pytest.raises(ClientError) as exc:
        iot.get_statistics(queryString="attributes.suite:idx", aggregationField="attributes.site")
    assert code(exc) == "InvalidAggregationException"
    for bad in ("thingName:(idx-a", "attributes.temp:[1 TO", "AND", "thingName:"):
        with pytest.raises(ClientError) as exc:
            iot.search_index(queryString=bad)
        assert code(exc) == "InvalidQueryException"
    with pytest.raises(ClientError) as exc:
        iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "SOMETIMES"})
    assert code(exc) == "InvalidRequestException"


def test_dynamic_thing_groups_follow_registry_changes(iot):
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    iot.create_thing(thingName="dyn-1", attributePayload={"attributes": {"dynsuite": "yes", "fw": "1.0"}})
    iot.create_thing(thingName="dyn-2", attributePayload={"attributes": {"dynsuite": "yes", "fw": "2.0"}})
    out = iot.create_dynamic_thing_group(thingGroupName="old-firmware",
                                         queryString="attributes.dynsuite:yes AND attributes.fw:1.*")
    assert out["indexName"] == "AWS_Things" and out["queryVersion"] == "2017-09-30"
    members = lambda: iot.list_things_in_thing_group(thingGroupName="old-firmware")["things"]  # noqa: E731
    assert members() == ["dyn-1"]
    iot.update_thing(thingName="dyn-2", attributePayload={"attributes": {"fw": "1.5"}, "merge": True})
    assert members() == ["dyn-1", "dyn-2"]
    assert "old-firmware" in [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="dyn-2")["thingGroups"]]
    described = iot.describe_thing_group(thingGroupName="old-firmware")
    assert described["queryString"] == "attributes.dynsuite:yes AND attributes.fw:1.*"
    # a job to the dynamic group reaches the members it has when the job is created
    job = iot.create_job(jobId="dyn-job", targets=[out["thingGroupArn"]], document="{}")
    assert sorted(e["thingArn"].rsplit("/", 1)[1] for e in iot.list_job_executions_for_job(
        jobId=job["jobId"])["executionSummaries"]) == ["dyn-1", "dyn-2"]
    assert iot.update_dynamic_thing_group(thingGroupName="old-firmware", thingGroupProperties={},
                                          queryString="attributes.dynsuite:yes AND attributes.fw<1.2")["version"] == 2
    assert members() == ["dyn-1"]
    with pytest.raises(ClientError) as exc:
        iot.add_thing_to_thing_group(thingGroupName="old-firmware", thingName="dyn-2")
    assert code(exc) == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        iot.create_dynamic_thing_group(thingGroupName="old-firmware", queryString="thingName:*")
    assert code(exc) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        iot.create_dynamic_thing_group(thingGroupName="broken", queryString="attributes.fw:(1")
    assert code(exc) == "InvalidQueryException"
    with pytest.raises(ClientError) as exc:
        iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"})
    assert code(exc) == "InvalidRequestException"  # dynamic groups need the index
    iot.delete_dynamic_thing_group(thingGroupName="old-firmware")
    with pytest.raises(ClientError) as exc:
        iot.describe_thing_group(thingGroupName="old-firmware")
    assert code(exc) == "ResourceNotFoundException"
