"""PartiQL through boto3: SELECT (partition reads and scans, pagination), INSERT,
UPDATE, DELETE, parameters, batches and transactions."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from dynamodb_helpers import error, make_table


@pytest.fixture(scope="module")
def ddb(unkai):
    return unkai.client("dynamodb")


@pytest.fixture(scope="module")
def table(ddb):
    return make_table(ddb, range_key=("sk", "N"))


def run(ddb, statement, *parameters, **kw):
    return ddb.execute_statement(Statement=statement, Parameters=list(parameters), **kw) if parameters else \
        ddb.execute_statement(Statement=statement, **kw)


def test_insert_select_update_delete(ddb, table):
    run(ddb, f"INSERT INTO \"{table}\" VALUE {{'pk': 'a', 'sk': 1, 'tags': <<'x', 'y'>>, 'm': {{'k': [1, 'two']}}}}")
    run(ddb, f'INSERT INTO "{table}" VALUE {{\'pk\': ?, \'sk\': ?, \'n\': ?}}', {"S": "a"}, {"N": "2"}, {"N": "10"})
    with pytest.raises(ClientError) as exc:
        run(ddb, f"INSERT INTO \"{table}\" VALUE {{'pk': 'a', 'sk': 1}}")
    assert error(exc) == ("DuplicateItemException", "Duplicate primary key exists in table")
    items = run(ddb, f'SELECT * FROM "{table}" WHERE pk = \'a\'')["Items"]
    assert [i["sk"]["N"] for i in items] == ["1", "2"]
    assert items[0]["tags"] == {"SS": ["x", "y"]} and items[0]["m"] == {"M": {"k": {"L": [{"N": "1"}, {"S": "two"}]}}}
    picked = run(ddb, f'SELECT sk, m.k[1] FROM "{table}" WHERE pk = ? AND sk > ?', {"S": "a"}, {"N": "0"})["Items"]
    assert picked == [{"sk": {"N": "1"}, "m": {"M": {"k": {"L": [{"S": "two"}]}}}}, {"sk": {"N": "2"}}]
    updated = run(ddb, f"UPDATE \"{table}\" SET n = n + 5, note = 'hi' REMOVE tags WHERE pk = 'a' AND sk = 2 "
                       "RETURNING ALL NEW *")["Items"][0]
    assert updated["n"] == {"N": "15"} and updated["note"] == {"S": "hi"}
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        run(ddb, f"UPDATE \"{table}\" SET n = 1 WHERE pk = 'a' AND sk = 2 AND n = 0")
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        run(ddb, f"UPDATE \"{table}\" SET n = 1 WHERE pk = 'nobody' AND sk = 2")
    scanned = run(ddb, f'SELECT pk FROM "{table}" WHERE n BETWEEN 10 AND 20 OR note IS MISSING')["Items"]
    assert len(scanned) == 2
    run(ddb, f"DELETE FROM \"{table}\" WHERE pk = 'a' AND sk = 1")
    assert [i["sk"]["N"] for i in run(ddb, f'SELECT sk FROM "{table}" WHERE pk = \'a\'')["Items"]] == ["2"]
    with pytest.raises(ClientError) as exc:
        run(ddb, f"SELEC * FROM \"{table}\"")
    assert error(exc)[0] == "ValidationException"


def test_select_pages_with_next_token(ddb):
    name = make_table(ddb, range_key=("sk", "N"))
    ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"N": str(i)}}}}
                                              for i in range(12)]})
    seen, token = [], None
    while True:
        page = run(ddb, f'SELECT sk FROM "{name}" WHERE pk = \'p\'', Limit=5, **({"NextToken": token} if token else {}))
        seen += [int(i["sk"]["N"]) for i in page["Items"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == list(range(12))


def test_batch_and_transaction(ddb, table):
    r = ddb.batch_execute_statement(Statements=[
        {"Statement": f"INSERT INTO \"{table}\" VALUE {{'pk': 'b', 'sk': 1}}"},
        {"Statement": f"INSERT INTO \"{table}\" VALUE {{'pk': 'b', 'sk': 1}}"},
        {"Statement": f"SELECT * FROM \"{table}\" WHERE pk = 'b' AND sk = 1"}])["Responses"]
    assert r[0] == {"TableName": table} and r[1]["Error"]["Code"] == "DuplicateItem"
    assert r[2]["Item"] == {"pk": {"S": "b"}, "sk": {"N": "1"}}
    ddb.execute_transaction(TransactStatements=[
        {"Statement": f"INSERT INTO \"{table}\" VALUE {{'pk': 'c', 'sk': 1}}"},
        {"Statement": f"UPDATE \"{table}\" SET v = 1 WHERE pk = 'b' AND sk = 1"}])
    with pytest.raises(ClientError) as exc:
        ddb.execute_transaction(TransactStatements=[
            {"Statement": f"INSERT INTO \"{table}\" VALUE {{'pk': 'd', 'sk': 1}}"},
            {"Statement": f"UPDATE \"{table}\" SET v = 2 WHERE pk = 'b' AND sk = 1 AND v = 5"}])
    assert error(exc)[0] == "TransactionCanceledException"
    assert [r["Code"] for r in exc.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert run(ddb, f"SELECT * FROM \"{table}\" WHERE pk = 'd'")["Items"] == []  # rolled back
