"""Fuzzing the expression language: whatever text arrives, the parser answers with a
parse or a ValidationException, never a crash or a hang; and a server fed random
expressions keeps answering in AWS's error shape."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamodb_helpers import make_table
from unkai.protocol import ServiceError
from unkai.services.dynamodb.expressions import Env, holds, parse_condition, parse_projection, parse_update
from unkai.services.dynamodb.expressions import update as updates

TOKENS = ["a", "b", "#n", ":v", ":w", "(", ")", "[", "]", "0", "12", ".", ",", "=", "<>", "<", "<=", ">", ">=",
          "+", "-", "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE", "size", "contains",
          "begins_with", "attribute_exists", "attribute_not_exists", "attribute_type", "if_not_exists",
          "list_append", "status", "@", "$", " ", "\t"]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join)
raw_text = st.text(max_size=200)
ENV_VALUES = {":v": {"N": "1"}, ":w": {"S": "x"}}
ITEM = {"a": {"N": "1"}, "b": {"M": {"c": {"L": [{"S": "x"}]}}}, "n": {"SS": ["x"]}}


def _evaluate(text: str) -> None:
    try:
        parsed = parse_condition(text)
    except ServiceError as exc:
        assert exc.code == "ValidationException" and exc.message
        return
    env = Env({"#n": "n"}, dict(ENV_VALUES))
    try:
        env.bind(parsed, "ConditionExpression")
    except ServiceError:
        return
    assert holds(parsed.node, ITEM, env) in (True, False)


def _update(text: str) -> None:
    try:
        parsed = parse_update(text)
        env = Env({"#n": "n"}, dict(ENV_VALUES))
        env.bind(parsed, "UpdateExpression")
        updates.check(parsed.node, env, ("pk",))
        updates.apply(parsed.node, dict(ITEM), env)
    except ServiceError as exc:
        assert exc.code == "ValidationException" and exc.message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(token_soup, raw_text))
def test_condition_parser_never_crashes(text):
    _evaluate(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(token_soup.map(lambda s: "SET " + s), token_soup, raw_text))
def test_update_parser_never_crashes(text):
    _update(text)


@settings(max_examples=100, deadline=None)
@given(st.one_of(token_soup, raw_text))
def test_projection_parser_never_crashes(text):
    try:
        parse_projection(text)
    except ServiceError as exc:
        assert exc.code == "ValidationException"


@pytest.mark.parametrize("text", [
    "(" * 5000 + "a = :v" + ")" * 5000,
    "NOT " * 5000 + "a = :v",
    " AND ".join(["a = :v"] * 400),
    "a." * 3000 + "b = :v",
    "a" + "[0]" * 3000 + " = :v",
    "size(" * 3000 + "a" + ")" * 3000 + " = :v",
])
def test_pathological_expressions_fail_fast(text):
    with pytest.raises(ServiceError) as exc:
        parse_condition(text)
    assert exc.value.code == "ValidationException"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(token_soup, raw_text.filter(lambda s: s.strip())))
def test_server_answers_random_expressions_with_aws_errors(unkai_fuzz_table, text):
    ddb, table = unkai_fuzz_table
    try:
        ddb.update_item(TableName=table, Key={"pk": {"S": "fuzz"}}, UpdateExpression="SET touched = :w",
                        ConditionExpression=text, ExpressionAttributeValues=ENV_VALUES,
                        ExpressionAttributeNames={"#n": "n"})
    except ClientError as exc:
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert exc.response["Error"]["Code"] in ("ValidationException", "ConditionalCheckFailedException")


@pytest.fixture(scope="module")
def unkai_fuzz_table(unkai):
    ddb = unkai.client("dynamodb")
    return ddb, make_table(ddb)
