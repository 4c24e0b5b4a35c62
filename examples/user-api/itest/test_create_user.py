"""POST /users end to end: an operator signed in with SRP creates users through the
Cognito authorizer; the user is in Cognito and in DynamoDB; bad requests are 400, a
second user with the same email is 409, and no token is 401."""

import uuid

import boto3
import pytest


def new_user(**overrides):
    user = {"email": f"user-{uuid.uuid4().hex[:8]}@example.com", "company": "LIXIL",
            "display_user_name": "山田 太郎", "user_level": "operator"}
    user.update(overrides)
    return user


@pytest.mark.usefixtures("signup_fixture", "signin_fixture")
class TestCreateUser:
    def test_create_user_created(self, ssm_parameters, api, signin_fixture, cognito, created_users):
        request = new_user()
        status, body = api.post("/users", request, signin_fixture.id_token)
        assert status == 201, body
        created_users.append(body["user_uuid"])
        assert uuid.UUID(body["user_uuid"]).version == 4
        table = boto3.resource("dynamodb").Table(ssm_parameters.get("user-api/users_table_name"))
        item = table.get_item(Key={"user_uuid": body["user_uuid"]})["Item"]
        assert item["email"] == request["email"] and item["display_user_name"] == "山田 太郎"
        assert item["created_at"] == item["updated_at"]
        assert "user_level" not in item
        user = cognito.admin_get_user(UserPoolId=ssm_parameters.get("user-api/user_pool_id"),
                                      Username=body["user_uuid"])
        assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
        assert {"Name": "email", "Value": request["email"]} in user["UserAttributes"]

    def test_create_user_conflict(self, api, signin_fixture, created_users):
        request = new_user()
        status, body = api.post("/users", request, signin_fixture.id_token)
        assert status == 201, body
        created_users.append(body["user_uuid"])
        status, body = api.post("/users", new_user(email=request["email"]), signin_fixture.id_token)
        assert status == 409, body

    @pytest.mark.parametrize("request_body", [
        new_user(email="not-an-email"),
        {k: v for k, v in new_user().items() if k != "company"},
        new_user(user_level="root"),
        b"not json",
    ])
    def test_create_user_invalid_request(self, api, signin_fixture, request_body):
        status, body = api.post("/users", request_body, signin_fixture.id_token)
        assert status == 400, body
        assert body["message"].startswith("invalid request: ")

    def test_create_user_unauthorized(self, api):
        status, body = api.post("/users", new_user())
        assert status == 401
        status, body = api.post("/users", new_user(), "not-a-token")
        assert status == 401
