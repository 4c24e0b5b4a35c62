"""End-to-end tests written as the talk writes them: a session fixture reads the
environment's settings from Parameter Store (``--env``, paging GetParametersByPath), and
every prerequisite business step is a fixture, in the registration flow's order:

1. ``download_cert_fixture``: the maker's CA (registered with auto-registration) and a
   hub certificate it signed, as the factory writes it into the hub;
2. ``signup_fixture``: the hub pre-registered in the HUB-Device table (DynamoDBへ事前登録);
3. ``task_fixture``: the task the client follows;
4. ``jit_second_fixture``: the hub's first connection registers its certificate just in
   time (and is refused), the JITR function activates it, the second connection works;
5. ``iot_thing_hub_register_fixture``: hub registration;
6. ``iot_thing_nodes_register_fixture``: node registration of two delivery boxes.

Against AWS: ``pytest itest --env dev`` (``IOT_ROOT_CA`` names Amazon's root CA file).
Against unkai: the same with ``AWS_ENDPOINT_URL=http://127.0.0.1:4566`` and unkai started
with ``--mqtt-port``; the broker's address and CA come from ``/_unkai/iot``.
"""

import datetime as dt
import hashlib
import json
import os
import time
import urllib.request
import uuid
from dataclasses import dataclass
from typing import List

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def pytest_addoption(parser):
    parser.addoption("--env", action="store", default="dev", help="the environment whose stack is tested")


class SsmParameters:
    """The environment's parameters by their name under /<env>/ (``smart-post/task_table``...)."""

    def __init__(self, values):
        self.values = values

    def get(self, name):
        return self.values[name]


@pytest.fixture(scope="session")
def ssm_parameters(request) -> SsmParameters:
    env = request.config.getoption("--env")
    ssm = boto3.client("ssm")
    args = {"Path": f"/{env}", "Recursive": True, "WithDecryption": True, "MaxResults": 10}
    response = ssm.get_parameters_by_path(**args)
    result = response["Parameters"]
    while response.get("NextToken"):
        response = ssm.get_parameters_by_path(**args, NextToken=response["NextToken"])
        result += response["Parameters"]
    yield SsmParameters({p["Name"][len(f"/{env}/"):]: p["Value"] for p in result})


def eventually(check, timeout=30.0, interval=0.2):
    """``check()``'s first truthy answer (AWS's and unkai's deliveries are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@dataclass
class MqttEndpoint:
    host: str
    port: int
    ca_path: str
    https_port: int = 8443  # the IoT HTTP protocol


@pytest.fixture(scope="session")
def mqtt_endpoint(tmp_path_factory) -> MqttEndpoint:
    local = os.environ.get("AWS_ENDPOINT_URL")
    if local:
        with urllib.request.urlopen(local.rstrip("/") + "/_unkai/iot", timeout=10) as response:
            info = json.loads(response.read())
        ca = tmp_path_factory.mktemp("ca") / "ca.pem"
        ca.write_text(info["caPem"])
        return MqttEndpoint("localhost", info["mqtt"]["port"], str(ca), info["mqtt"]["httpsPort"])
    address = boto3.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    return MqttEndpoint(address, 8883, os.environ["IOT_ROOT_CA"])


def connect(endpoint: MqttEndpoint, cert_path, key_path, client_id):
    """An MQTT connection with the AWS IoT Device SDK v2, as the hub's firmware makes it."""
    from awsiot import mqtt_connection_builder

    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=endpoint.host, port=endpoint.port, cert_filepath=str(cert_path), pri_key_filepath=str(key_path),
        ca_filepath=endpoint.ca_path, client_id=client_id, clean_session=True, keep_alive_secs=30)
    connection.connect().result(20)
    return connection


def http_publish(endpoint: MqttEndpoint, cert_path, key_path, topic, payload: bytes, qos=1):
    """The IoT HTTP protocol: POST /topics/{topic} over HTTPS with the device certificate."""
    import http.client
    import ssl
    from urllib.parse import quote

    context = ssl.create_default_context(cafile=endpoint.ca_path)
    context.load_cert_chain(str(cert_path), str(key_path))
    connection = http.client.HTTPSConnection(endpoint.host, endpoint.https_port, context=context, timeout=20)
    try:
        connection.request("POST", f"/topics/{quote(topic)}?qos={qos}", body=payload)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, issuer, public_key, signing_key, ca=False):
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
               .not_valid_after(now + dt.timedelta(days=30)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(signing_key, hashes.SHA256())


@dataclass
class DownloadCertFixture:
    device_id: str
    cert_path: str
    key_path: str
    certificate_id: str
    ca_certificate_id: str


@pytest.fixture(scope="session")
def download_cert_fixture(tmp_path_factory) -> DownloadCertFixture:
    """The maker's CA, registered with auto-registration (verified with the account's
    registration code), and a hub certificate it signed for the device id."""
    iot = boto3.client("iot")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"smart-post maker CA {uuid.uuid4().hex[:6]}")
    ca = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    proof_key = ec.generate_private_key(ec.SECP256R1())
    proof = _certificate(_name(iot.get_registration_code()["registrationCode"]), ca_name, proof_key.public_key(),
                         ca_key)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    ca_id = iot.register_ca_certificate(caCertificate=pem(ca), verificationCertificate=pem(proof), setAsActive=True,
                                        allowAutoRegistration=True)["certificateId"]
    device_id = f"HUB{uuid.uuid4().int % 10**9:09d}"
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(_name(device_id), ca_name, key.public_key(), ca_key)
    folder = tmp_path_factory.mktemp("hub")
    cert_path, key_path = folder / "hub.pem", folder / "hub.key"
    cert_path.write_text(pem(cert) + pem(ca))  # the device presents its certificate with the CA's (JITR)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    certificate_id = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    yield DownloadCertFixture(device_id, str(cert_path), str(key_path), certificate_id, ca_id)
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")


@dataclass
class SignUpFixture:
    device_id: str
    code: str


@pytest.fixture(scope="session")
def signup_fixture(ssm_parameters, download_cert_fixture) -> SignUpFixture:
    """The hub pre-registered in the HUB-Device table with its registration code."""
    table = boto3.resource("dynamodb").Table(ssm_parameters.get("smart-post/device_table"))
    signup = SignUpFixture(download_cert_fixture.device_id, f"{uuid.uuid4().int % 10**6:06d}")
    table.put_item(Item={"device_id": signup.device_id, "registration_code": signup.code,
                         "status": "PRE_REGISTERED"})
    yield signup
    table.delete_item(Key={"device_id": signup.device_id})


@dataclass
class TaskFixture:
    task_uuid: str


@pytest.fixture(scope="session")
def task_fixture() -> TaskFixture:
    return TaskFixture(str(uuid.uuid4()))


@dataclass
class JitFixture:
    certificate_id: str


@pytest.fixture(scope="session")
def jit_second_fixture(download_cert_fixture, signup_fixture, mqtt_endpoint) -> JitFixture:
    """The first connection registers the certificate just in time and is refused; once the
    JITR function has activated it, the second connection succeeds."""
    iot = boto3.client("iot")
    cert = download_cert_fixture
    with pytest.raises(Exception):
        connect(mqtt_endpoint, cert.cert_path, cert.key_path, cert.device_id)

    def active():
        try:
            return iot.describe_certificate(certificateId=cert.certificate_id)[
                "certificateDescription"]["status"] == "ACTIVE"
        except iot.exceptions.ResourceNotFoundException:
            return False

    assert eventually(active), "the JITR function did not activate the certificate"
    connection = connect(mqtt_endpoint, cert.cert_path, cert.key_path, cert.device_id)
    connection.disconnect().result(10)
    return JitFixture(cert.certificate_id)


def invoke(function_name, payload):
    response = boto3.client("lambda").invoke(FunctionName=function_name, Payload=json.dumps(payload).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read() or b"null")


@dataclass
class HubRegisterFixture:
    hub_uuid: str
    thing_group_name: str


@pytest.fixture(scope="session")
def iot_thing_hub_register_fixture(ssm_parameters, signup_fixture, jit_second_fixture) -> HubRegisterFixture:
    error, out = invoke(ssm_parameters.get("smart-post/hub_register_function"), {
        "task_uuid": str(uuid.uuid4()), "device_id": signup_fixture.device_id, "code": signup_fixture.code,
        "certificate_id": jit_second_fixture.certificate_id})
    assert error is None, out
    return HubRegisterFixture(out["hub_uuid"], out["thing_group_name"])


@dataclass
class IotThingNodeRegisterFixture:
    node_id: str
    node_uuid: str


@pytest.fixture(scope="session")
def iot_thing_nodes_register_fixture(ssm_parameters, signup_fixture, task_fixture, jit_second_fixture,
                                     iot_thing_hub_register_fixture) -> List[IotThingNodeRegisterFixture]:
    nodes = [{"node_id": "box-1", "type": "post"}, {"node_id": "box-2", "type": "parcel-box"}]
    error, out = invoke(ssm_parameters.get("smart-post/nodes_register_function"), {
        "task_uuid": task_fixture.task_uuid, "device_id": signup_fixture.device_id, "code": signup_fixture.code,
        "hub_uuid": iot_thing_hub_register_fixture.hub_uuid, "certificate_id": jit_second_fixture.certificate_id,
        "nodes": nodes})
    assert error is None, out
    return [IotThingNodeRegisterFixture(n["node_id"], uuid_) for n, uuid_ in zip(nodes, out["nodes"])]
