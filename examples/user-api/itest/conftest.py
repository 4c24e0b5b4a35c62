"""End-to-end tests written as the talk writes them: a session fixture reads the
environment's settings from Parameter Store (``--env``, paging GetParametersByPath), and
every prerequisite step is a fixture (an operator who signed up, then signed in with
SRP), so each test starts from the state it needs.

Against AWS: ``pytest itest --env dev`` with credentials for the account the stack is in.
Against unkai: the same, with ``AWS_ENDPOINT_URL=http://127.0.0.1:4566`` (boto3 reads it;
``ApiClient`` sends the API's requests there, keeping the API's host name).
"""

import json
import os
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
import pytest
from pycognito.aws_srp import AWSSRP


def pytest_addoption(parser):
    parser.addoption("--env", action="store", default="dev", help="the environment whose stack is tested")


class SsmParameters:
    """The environment's parameters by their name under /<env>/ (``user-api/api_url``...)."""

    def __init__(self, values):
        self.values = values

    def get(self, name):
        return self.values[name]


@pytest.fixture(scope="session", autouse=False)
def ssm_parameters(request) -> SsmParameters:
    env = request.config.getoption("--env")
    yield make_parameters(env)


def make_parameters(env) -> SsmParameters:
    ssm = boto3.client("ssm")
    function_args = {
        "Path": f"/{env}",
        "Recursive": True,
        "WithDecryption": True,
        "MaxResults": 10,
    }
    response = ssm.get_parameters_by_path(**function_args)
    current_batch, next_token = extract_result(response)
    result = current_batch
    while next_token is not None:
        response = ssm.get_parameters_by_path(**function_args, NextToken=next_token)
        current_batch, next_token = extract_result(response)
        result += current_batch
    parameters_from_ssm = {extract_parameter_name(env, parameter): parameter["Value"] for parameter in result}
    return SsmParameters(parameters_from_ssm)


def extract_result(response):
    return response["Parameters"], response.get("NextToken")


def extract_parameter_name(env, parameter):
    return parameter["Name"][len(f"/{env}/"):]


@dataclass
class SignUpFixture:
    username: str
    email: str
    password: str


@dataclass
class SignInFixture:
    id_token: str
    access_token: str


@pytest.fixture(scope="session")
def cognito():
    return boto3.client("cognito-idp")


@pytest.fixture(scope="session")
def signup_fixture(ssm_parameters, cognito) -> SignUpFixture:
    """An operator who signed up (and was confirmed by an administrator)."""
    operator = SignUpFixture(f"operator-{uuid.uuid4().hex[:8]}", f"operator-{uuid.uuid4().hex[:8]}@example.com",
                             f"Itest-{uuid.uuid4().hex[:12]}")
    pool_id = ssm_parameters.get("user-api/user_pool_id")
    cognito.sign_up(ClientId=ssm_parameters.get("user-api/client_id"), Username=operator.username,
                    Password=operator.password, UserAttributes=[{"Name": "email", "Value": operator.email}])
    cognito.admin_confirm_sign_up(UserPoolId=pool_id, Username=operator.username)
    yield operator
    cognito.admin_delete_user(UserPoolId=pool_id, Username=operator.username)


@pytest.fixture(scope="session")
def signin_fixture(ssm_parameters, cognito, signup_fixture) -> SignInFixture:
    """The operator signed in with SRP, as the operators' SPA does."""
    srp = AWSSRP(username=signup_fixture.username, password=signup_fixture.password,
                 pool_id=ssm_parameters.get("user-api/user_pool_id"),
                 client_id=ssm_parameters.get("user-api/client_id"), client=cognito)
    result = srp.authenticate_user()["AuthenticationResult"]
    return SignInFixture(result["IdToken"], result["AccessToken"])


class ApiClient:
    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")

    def post(self, path, body, token=None):
        url = self.base_url + path
        headers = {"Content-Type": "application/json"}
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:  # a local cloud: same request, same Host, to its endpoint
            parts = urlsplit(url)
            headers["Host"] = parts.netloc
            url = endpoint.rstrip("/") + parts.path
        if token:
            headers["Authorization"] = token
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="session")
def api(ssm_parameters) -> ApiClient:
    return ApiClient(ssm_parameters.get("user-api/api_url"))


@pytest.fixture
def created_users(ssm_parameters, cognito):
    """user_uuids a test created, removed from Cognito and DynamoDB afterwards."""
    created = []
    yield created
    table = boto3.resource("dynamodb").Table(ssm_parameters.get("user-api/users_table_name"))
    for user_uuid in created:
        cognito.admin_delete_user(UserPoolId=ssm_parameters.get("user-api/user_pool_id"), Username=user_uuid)
        table.delete_item(Key={"user_uuid": user_uuid})
