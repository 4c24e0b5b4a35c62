"""Query and Scan: key order exactly as DynamoDB orders keys, pagination, filters,
projections, Select, secondary indexes and parallel scans."""

from __future__ import annotations

import random

import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from dynamodb_helpers import error, make_table


@pytest.fixture(scope="module")
def ddb(unkai):
    return unkai.client("dynamodb")


def query_all(ddb, **kwargs):
    items, pages = [], 0
    while True:
        page = ddb.query(**kwargs)
        pages += 1
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items, pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_number_sort_keys_order_numerically(ddb):
    table = make_table(ddb, range_key=("sk", "N"))
    numbers = ["-1E+100", "-12345.678", "-100", "-99.5", "-1", "-0.5", "-0.000001", "0", "1E-130", "0.000001",
               "0.5", "1", "1.5", "2", "10", "99.99", "100", "12345.678", "98765432109876543210987654321098765432",
               "9.9999999999999999999999999999999999999E+125"]
    shuffled = numbers[:]
    random.Random(7).shuffle(shuffled)
    for n in shuffled:
        ddb.put_item(TableName=table, Item={"pk": {"S": "n"}, "sk": {"N": n}})
    items, _ = query_all(ddb, TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "n"}})
    got = [float(i["sk"]["N"]) for i in items]
    assert got == sorted(got) and len(got) == len(numbers)
    items, _ = query_all(ddb, TableName=table, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                         ExpressionAttributeValues={":p": {"S": "n"}, ":a": {"N": "-1"}, ":b": {"N": "1.5"}},
                         ScanIndexForward=False)
    got = [float(i["sk"]["N"]) for i in items]
    assert got == sorted((float(n) for n in numbers if -1 <= float(n) <= 1.5), reverse=True)
    assert "0." + "0" * 129 + "1" in [i["sk"]["N"] for i in items]  # 1E-130, in plain form


def test_string_and_binary_keys_order_by_bytes(ddb):
    table = make_table(ddb, range_key=("sk", "S"))
    strings = ["a", "B", "aa", "ab", "é", "z", "ü", "\U0001F600", "\uffff", "0", " ", "Ä", "日本"]
    for s in strings:
        ddb.put_item(TableName=table, Item={"pk": {"S": "s"}, "sk": {"S": s}})
    items, _ = query_all(ddb, TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "s"}})
    assert [i["sk"]["S"] for i in items] == sorted(strings, key=lambda s: s.encode())
    prefixed, _ = query_all(ddb, TableName=table, KeyConditionExpression="pk = :p AND begins_with(sk, :b)",
                            ExpressionAttributeValues={":p": {"S": "s"}, ":b": {"S": "a"}})
    assert [i["sk"]["S"] for i in prefixed] == ["a", "aa", "ab"]
    btable = make_table(ddb, range_key=("sk", "B"))
    blobs = [b"\x00", b"\xff", b"\x00\x00", b"\x7f", b"\x80", b"\xff\xff", b"a"]
    for b in blobs:
        ddb.put_item(TableName=btable, Item={"pk": {"S": "b"}, "sk": {"B": b}})
    items, _ = query_all(ddb, TableName=btable, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "b"}})
    assert [i["sk"]["B"] for i in items] == sorted(blobs)
    items, _ = query_all(ddb, TableName=btable, KeyConditionExpression="pk = :p AND begins_with(sk, :b)",
                         ExpressionAttributeValues={":p": {"S": "b"}, ":b": {"B": b"\xff"}})
    assert [i["sk"]["B"] for i in items] == [b"\xff", b"\xff\xff"]


def test_pagination_filter_projection_and_count(ddb):
    table = make_table(ddb, range_key=("sk", "N"))
    for i in range(25):
        ddb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"N": str(i)}, "odd": {"BOOL": i % 2 == 1},
                                            "pad": {"S": "x" * 10}})
    page = ddb.query(TableName=table, KeyConditionExpression="pk = :p", Limit=10,
                     FilterExpression="odd = :t", ExpressionAttributeValues={":p": {"S": "p"}, ":t": {"BOOL": True}})
    assert page["ScannedCount"] == 10 and page["Count"] == 5
    assert page["LastEvaluatedKey"] == {"pk": {"S": "p"}, "sk": {"N": "9"}}
    items, pages = query_all(ddb, TableName=table, KeyConditionExpression="pk = :p", Limit=7, ProjectionExpression="sk",
                             ExpressionAttributeValues={":p": {"S": "p"}})
    assert [int(i["sk"]["N"]) for i in items] == list(range(25)) and pages == 4
    assert all(set(i) == {"sk"} for i in items)
    count = ddb.query(TableName=table, KeyConditionExpression="pk = :p AND sk >= :n", Select="COUNT",
                      ExpressionAttributeValues={":p": {"S": "p"}, ":n": {"N": "20"}})
    assert count["Count"] == 5 and "Items" not in count
    with pytest.raises(ClientError) as exc:
        ddb.query(TableName=table, KeyConditionExpression="pk = :p", FilterExpression="sk > :n",
                  ExpressionAttributeValues={":p": {"S": "p"}, ":n": {"N": "1"}})
    assert error(exc) == ("ValidationException", "Filter Expression can only contain non-primary key attributes: "
                                                 "Primary key attribute: sk")


@pytest.mark.parametrize("condition,values,message", [
    ("sk = :n", {":n": {"N": "1"}}, "Query condition missed key schema element: pk"),
    ("pk = :p OR sk = :n", {":p": {"S": "p"}, ":n": {"N": "1"}}, "Invalid operator used in KeyConditionExpression: OR"),
    ("pk = :p AND sk = :n AND sk > :n", {":p": {"S": "p"}, ":n": {"N": "1"}}, "Conditions can be of length 1 or 2 only"),
    ("pk = :n", {":n": {"N": "1"}}, "One or more parameter values were invalid: Condition parameter type does not "
                                    "match schema type"),
    ("pk = :p AND begins_with(sk, :n)", {":p": {"S": "p"}, ":n": {"N": "1"}},
     "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: "
     "begins_with, operand type: N"),
    ("pk = :p AND xtra = :n", {":p": {"S": "p"}, ":n": {"N": "1"}}, "Query condition missed key schema element: sk"),
    ("pk > :p", {":p": {"S": "p"}}, "Query key condition not supported"),
])
def test_key_condition_errors(ddb, condition, values, message):
    table = make_table(ddb, range_key=("sk", "N"))
    with pytest.raises(ClientError) as exc:
        ddb.query(TableName=table, KeyConditionExpression=condition, ExpressionAttributeValues=values)
    assert error(exc) == ("ValidationException", message)


def test_global_and_local_secondary_indexes(unkai, ddb):
    table = make_table(
        ddb, range_key=("sk", "S"), types={"email": "S", "score": "N", "haserror": "N"},
        GlobalSecondaryIndexes=[
            {"IndexName": "by-email", "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "KEYS_ONLY"}},
            {"IndexName": "haserror-index", "KeySchema": [{"AttributeName": "haserror", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}}],
        LocalSecondaryIndexes=[
            {"IndexName": "by-score", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                    {"AttributeName": "score", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["label"]}}])
    res = unkai.resource("dynamodb").Table(table)
    for i in range(10):
        res.put_item(Item={"pk": "u", "sk": f"{i:02d}", "email": f"user{i % 3}@example.com", "score": 100 - i,
                           "label": f"L{i}", "secret": "s", "haserror": 1 if i in (3, 7) else 0})
    res.put_item(Item={"pk": "u", "sk": "sparse"})  # no index keys: in no GSI
    r = res.query(IndexName="haserror-index", KeyConditionExpression=Key("haserror").eq(1))
    assert sorted(i["sk"] for i in r["Items"]) == ["03", "07"] and r["Items"][0]["secret"] == "s"
    r = res.query(IndexName="by-email", KeyConditionExpression=Key("email").eq("user1@example.com"))
    assert sorted(i["sk"] for i in r["Items"]) == ["01", "04", "07"]
    assert set(r["Items"][0]) == {"pk", "sk", "email"}  # KEYS_ONLY
    r = res.query(IndexName="by-score", KeyConditionExpression=Key("pk").eq("u") & Key("score").lt(95))
    assert [int(i["score"]) for i in r["Items"]] == [91, 92, 93, 94]
    assert set(r["Items"][0]) == {"pk", "sk", "score", "label"}  # INCLUDE
    paged, pages = query_all(ddb, TableName=table, IndexName="by-score", Limit=3, KeyConditionExpression="pk = :p",
                             ExpressionAttributeValues={":p": {"S": "u"}})
    assert [int(i["score"]["N"]) for i in paged] == list(range(91, 101)) and pages == 4
    # an index entry follows its item's changes
    res.update_item(Key={"pk": "u", "sk": "03"}, UpdateExpression="SET haserror = :z", ExpressionAttributeValues={":z": 0})
    res.delete_item(Key={"pk": "u", "sk": "07"})
    assert res.query(IndexName="haserror-index", KeyConditionExpression=Key("haserror").eq(1))["Items"] == []
    scanned = res.scan(IndexName="by-email")["Items"]
    assert len(scanned) == 9
    with pytest.raises(ClientError) as exc:
        res.query(IndexName="by-email", KeyConditionExpression=Key("email").eq("x"), Select="ALL_ATTRIBUTES")
    assert "projection type is not ALL" in error(exc)[1]
    with pytest.raises(ClientError) as exc:
        res.query(IndexName="nope", KeyConditionExpression=Key("email").eq("x"))
    assert error(exc) == ("ValidationException", "The table does not have the specified index: nope")
    with pytest.raises(ClientError) as exc:
        res.put_item(Item={"pk": "u", "sk": "bad", "email": 5})
    assert error(exc) == ("ValidationException", "One or more parameter values were invalid: Type mismatch for Index "
                                                 "Key email Expected: S Actual: N IndexName: by-email")


def test_scan_pagination_filters_and_parallel_segments(unkai, ddb):
    table = make_table(ddb, range_key=("sk", "N"))
    res = unkai.resource("dynamodb").Table(table)
    with res.batch_writer() as writer:
        for p in range(20):
            for s in range(5):
                writer.put_item(Item={"pk": f"p{p}", "sk": s, "group": p % 4})
    seen, kwargs = [], {"Limit": 17}
    while True:
        page = res.scan(**kwargs)
        seen += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert len(seen) == 100 and len({(i["pk"], i["sk"]) for i in seen}) == 100
    filtered = res.scan(FilterExpression=Attr("group").eq(2) & Attr("sk").lte(1))
    assert filtered["Count"] == 10 and filtered["ScannedCount"] == 100
    segments = [res.scan(Segment=s, TotalSegments=4)["Items"] for s in range(4)]
    keys = [(i["pk"], i["sk"]) for seg in segments for i in seg]
    assert len(keys) == 100 and len(set(keys)) == 100
    assert sum(1 for seg in segments if seg) >= 2  # partitions spread over segments
    with pytest.raises(ClientError) as exc:
        res.scan(Segment=4, TotalSegments=4)
    assert error(exc)[1] == ("The Segment parameter is zero-based and must be less than parameter TotalSegments: "
                             "Segment: 4 is not less than TotalSegments: 4")


def test_query_never_scans_other_partitions(unkai, ddb):
    """The key condition is an index range: a page of a small partition needs no filtering
    of other partitions' items, which ScannedCount would show."""
    table = make_table(ddb, range_key=("sk", "N"))
    res = unkai.resource("dynamodb").Table(table)
    with res.batch_writer() as writer:
        for i in range(300):
            writer.put_item(Item={"pk": "big" if i % 3 else "small", "sk": i})
    r = res.query(KeyConditionExpression=Key("pk").eq("small") & Key("sk").between(30, 60))
    assert r["ScannedCount"] == r["Count"] == 11


def test_legacy_key_conditions_and_filters(ddb):
    table = make_table(ddb, range_key=("sk", "N"))
    for i in range(10):
        ddb.put_item(TableName=table, Item={"pk": {"S": "L"}, "sk": {"N": str(i)}, "kind": {"S": "even" if i % 2 == 0 else "odd"}})
    r = ddb.query(TableName=table, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "L"}]},
        "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "2"}, {"N": "7"}]}},
        QueryFilter={"kind": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "odd"}]}},
        AttributesToGet=["sk"])
    assert [i["sk"]["N"] for i in r["Items"]] == ["3", "5", "7"] and r["ScannedCount"] == 6
    r = ddb.scan(TableName=table, ScanFilter={"sk": {"ComparisonOperator": "IN",
                                                     "AttributeValueList": [{"N": "1"}, {"N": "8"}]},
                                              "kind": {"ComparisonOperator": "BEGINS_WITH",
                                                       "AttributeValueList": [{"S": "ev"}]}},
                 ConditionalOperator="OR", Select="COUNT")
    assert r["Count"] == 6
