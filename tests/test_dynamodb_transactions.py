"""Transactions and concurrency: all-or-nothing writes with a reason per action,
idempotency tokens, and atomic conditional writes and counters under real
concurrent clients."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from dynamodb_helpers import error, make_table


@pytest.fixture(scope="module")
def ddb(unkai):
    return unkai.client("dynamodb")


@pytest.fixture(scope="module")
def accounts(ddb):
    return make_table(ddb)


def balance(ddb, table, who):
    item = ddb.get_item(TableName=table, Key={"pk": {"S": who}}).get("Item")
    return int(item["amount"]["N"]) if item else None


def transfer(table, amount, token=None):
    items = [
        {"Update": {"TableName": table, "Key": {"pk": {"S": "alice"}}, "UpdateExpression": "SET amount = amount - :a",
                    "ConditionExpression": "amount >= :a", "ExpressionAttributeValues": {":a": {"N": str(amount)}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        {"Update": {"TableName": table, "Key": {"pk": {"S": "bob"}}, "UpdateExpression": "ADD amount :a",
                    "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
        {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "bank"}},
                            "ConditionExpression": "attribute_exists(pk)"}},
    ]
    return {"TransactItems": items, **({"ClientRequestToken": token} if token else {})}


def test_transact_write_all_or_nothing(ddb, accounts):
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": accounts, "Item": {"pk": {"S": "alice"}, "amount": {"N": "100"}}}},
        {"Put": {"TableName": accounts, "Item": {"pk": {"S": "bank"}}}}])
    ddb.transact_write_items(**transfer(accounts, 30))
    assert (balance(ddb, accounts, "alice"), balance(ddb, accounts, "bob")) == (70, 30)
    with pytest.raises(ClientError) as exc:
        ddb.transact_write_items(**transfer(accounts, 500))
    code, message = error(exc)
    assert code == "TransactionCanceledException"
    assert message == ("Transaction cancelled, please refer cancellation reasons for specific reasons "
                       "[ConditionalCheckFailed, None, None]")
    reasons = exc.value.response["CancellationReasons"]
    assert reasons[0]["Code"] == "ConditionalCheckFailed" and reasons[0]["Item"]["amount"] == {"N": "70"}
    assert reasons[1] == {"Code": "None"}
    assert (balance(ddb, accounts, "alice"), balance(ddb, accounts, "bob")) == (70, 30)  # nothing applied
    with pytest.raises(ClientError) as exc:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": accounts, "Item": {"pk": {"S": "x"}}}},
            {"Delete": {"TableName": accounts, "Key": {"pk": {"S": "x"}}}}])
    assert error(exc) == ("ValidationException", "Transaction request cannot include multiple operations on one item")


def test_client_request_token_is_idempotent(ddb, accounts):
    ddb.put_item(TableName=accounts, Item={"pk": {"S": "alice"}, "amount": {"N": "100"}})
    ddb.put_item(TableName=accounts, Item={"pk": {"S": "bob"}, "amount": {"N": "0"}})
    ddb.put_item(TableName=accounts, Item={"pk": {"S": "bank"}})
    ddb.transact_write_items(**transfer(accounts, 10, token="once"))
    ddb.transact_write_items(**transfer(accounts, 10, token="once"))  # a retry: applied once
    assert (balance(ddb, accounts, "alice"), balance(ddb, accounts, "bob")) == (90, 10)
    with pytest.raises(ClientError) as exc:
        ddb.transact_write_items(**transfer(accounts, 20, token="once"))
    assert error(exc)[0] == "IdempotentParameterMismatchException"


def test_transact_get_items(ddb, accounts):
    ddb.put_item(TableName=accounts, Item={"pk": {"S": "carol"}, "amount": {"N": "5"}, "note": {"S": "n"}})
    r = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": accounts, "Key": {"pk": {"S": "carol"}}, "ProjectionExpression": "amount"}},
        {"Get": {"TableName": accounts, "Key": {"pk": {"S": "nobody"}}}}])
    assert r["Responses"] == [{"Item": {"amount": {"N": "5"}}}, {}]


def run_threads(unkai, n, work):
    errors = []

    def worker(i):
        client = unkai.client("dynamodb")
        try:
            work(client, i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_counter_increments_are_atomic(unkai, ddb):
    table = make_table(ddb)

    def increment(client, i):
        for _ in range(1000 // 16 + (1 if i < 1000 % 16 else 0)):
            client.update_item(TableName=table, Key={"pk": {"S": "signup"}}, UpdateExpression="ADD seq :one",
                               ExpressionAttributeValues={":one": {"N": "1"}})

    assert run_threads(unkai, 16, increment) == []
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "signup"}}, ConsistentRead=True)["Item"]
    assert item["seq"] == {"N": "1000"}


def test_exactly_one_concurrent_conditional_put_wins(unkai, ddb):
    table = make_table(ddb)
    wins, losses = [], []
    barrier = threading.Barrier(16)

    def claim(client, i):
        barrier.wait()
        try:
            client.put_item(TableName=table, Item={"pk": {"S": "user"}, "owner": {"N": str(i)}},
                            ConditionExpression="attribute_not_exists(pk)")
            wins.append(i)
        except client.exceptions.ConditionalCheckFailedException:
            losses.append(i)

    assert run_threads(unkai, 16, claim) == []
    assert len(wins) == 1 and len(losses) == 15
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "user"}})["Item"]
    assert item["owner"] == {"N": str(wins[0])}
