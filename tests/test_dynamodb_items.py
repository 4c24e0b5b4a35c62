"""DynamoDB items through boto3: writes, reads, the expression language, numbers,
sets, binary, validation messages, batches and the legacy parameters."""

from __future__ import annotations

from decimal import Decimal

import pytest
from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from dynamodb_helpers import error, make_table


@pytest.fixture(scope="module")
def ddb(unkai):
    return unkai.client("dynamodb")


@pytest.fixture(scope="module")
def simple(ddb):
    return make_table(ddb)


@pytest.fixture(scope="module")
def ranged(ddb):
    return make_table(ddb, range_key=("sk", "N"))


def put(ddb, table, **attrs):
    ddb.put_item(TableName=table, Item=attrs)


def get(ddb, table, **key):
    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def test_put_get_delete_with_return_values(ddb, simple):
    item = {"pk": {"S": "a"}, "n": {"N": "1.50"}, "b": {"B": b"\x00\xff"}, "ok": {"BOOL": True}, "z": {"NULL": True},
            "m": {"M": {"x": {"L": [{"S": "y"}, {"N": "2"}]}}}, "ss": {"SS": ["p", "q"]}, "empty": {"S": ""}}
    assert "Attributes" not in ddb.put_item(TableName=simple, Item=item, ReturnValues="ALL_OLD")
    got = get(ddb, simple, pk={"S": "a"})
    assert got["n"] == {"N": "1.5"}  # canonical number form
    assert got["b"] == {"B": b"\x00\xff"} and got["m"] == item["m"] and got["empty"] == {"S": ""}
    old = ddb.put_item(TableName=simple, Item={"pk": {"S": "a"}, "v": {"S": "2"}}, ReturnValues="ALL_OLD")
    assert old["Attributes"]["n"] == {"N": "1.5"}
    assert get(ddb, simple, pk={"S": "a"}) == {"pk": {"S": "a"}, "v": {"S": "2"}}
    gone = ddb.delete_item(TableName=simple, Key={"pk": {"S": "a"}}, ReturnValues="ALL_OLD")
    assert gone["Attributes"] == {"pk": {"S": "a"}, "v": {"S": "2"}}
    assert get(ddb, simple, pk={"S": "a"}) is None
    assert "Attributes" not in ddb.delete_item(TableName=simple, Key={"pk": {"S": "a"}}, ReturnValues="ALL_OLD")


def test_projection_expression_nested_paths(ddb, simple):
    put(ddb, simple, pk={"S": "proj"}, a={"M": {"b": {"S": "1"}, "c": {"S": "2"}}},
        l={"L": [{"S": "0"}, {"S": "1"}, {"S": "2"}]}, other={"S": "x"})
    got = ddb.get_item(TableName=simple, Key={"pk": {"S": "proj"}}, ProjectionExpression="a.b, #l[2], #l[0], nope",
                       ExpressionAttributeNames={"#l": "l"})["Item"]
    assert got == {"a": {"M": {"b": {"S": "1"}}}, "l": {"L": [{"S": "0"}, {"S": "2"}]}}
    with pytest.raises(ClientError) as exc:
        ddb.get_item(TableName=simple, Key={"pk": {"S": "proj"}}, ProjectionExpression="a, a.b")
    assert error(exc) == ("ValidationException", "Invalid ProjectionExpression: Two document paths overlap with "
                          "each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]")
    got = ddb.get_item(TableName=simple, Key={"pk": {"S": "proj"}}, AttributesToGet=["other"])["Item"]
    assert got == {"other": {"S": "x"}}


def test_conditions_and_the_failed_item(ddb, simple):
    put(ddb, simple, pk={"S": "c"}, version={"N": "1"}, tags={"SS": ["x", "y"]}, name={"S": "alpha"})
    checks = {
        "version = :one": True, "version <> :one": False, "version BETWEEN :one AND :two": True,
        "version IN (:two, :one)": True, "attribute_exists(tags) AND NOT attribute_exists(nope)": True,
        "attribute_type(version, :n)": True, "contains(tags, :x)": True, "begins_with(#n, :al)": True,
        "size(tags) = :two": True, "size(#n) > :two AND (version < :one OR version >= :one)": True,
        "absent <> :one": True, "absent = :one": False, "absent < :two": False,
        "NOT version = :one OR version = :two": False, "contains(#n, :ph)": True,
    }
    values = {":one": {"N": "1"}, ":two": {"N": "2"}, ":n": {"S": "N"}, ":x": {"S": "x"}, ":al": {"S": "al"},
              ":ph": {"S": "ph"}}
    for expression, ok in checks.items():
        used = {k: v for k, v in values.items() if k in expression}
        kwargs = {"ExpressionAttributeValues": used} if used else {}
        if "#n" in expression:
            kwargs["ExpressionAttributeNames"] = {"#n": "name"}
        try:
            ddb.update_item(TableName=simple, Key={"pk": {"S": "c"}}, UpdateExpression="SET touched = :t",
                            ConditionExpression=expression,
                            ExpressionAttributeValues={**kwargs.pop("ExpressionAttributeValues", {}),
                                                       ":t": {"BOOL": True}}, **kwargs)
            assert ok, expression
        except ddb.exceptions.ConditionalCheckFailedException:
            assert not ok, expression
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=simple, Item={"pk": {"S": "c"}}, ConditionExpression="attribute_not_exists(pk)",
                     ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert error(exc) == ("ConditionalCheckFailedException", "The conditional request failed")
    assert exc.value.response["Item"]["version"] == {"N": "1"}


def test_update_expression_actions(ddb, ranged):
    key = {"pk": {"S": "u"}, "sk": {"N": "1"}}
    ddb.put_item(TableName=ranged, Item={**key, "count": {"N": "5"}, "lst": {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}]},
                                          "nums": {"NS": ["1", "2"]}, "nums2": {"NS": ["1", "2"]}, "m": {"M": {"inr": {"S": "x"}}}, "gone": {"S": "x"}})
    r = ddb.update_item(
        TableName=ranged, Key=key,
        UpdateExpression="SET #c = #c + :inc, m.inr = :new, m.added = :new, lst[1] = :new, lst[9] = :tail, "
                         "fresh = if_not_exists(fresh, :zero) - :inc, more = list_append(:l, lst) "
                         "REMOVE gone, lst[0] ADD nums :ns, ctr :inc DELETE nums2 :one",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":inc": {"N": "2"}, ":new": {"S": "N"}, ":tail": {"S": "T"}, ":zero": {"N": "0"},
                                   ":l": {"L": [{"S": "first"}]}, ":ns": {"NS": ["3"]}, ":one": {"NS": ["1"]}},
        ReturnValues="ALL_NEW")["Attributes"]
    assert r["count"] == {"N": "7"}
    assert r["m"] == {"M": {"inr": {"S": "N"}, "added": {"S": "N"}}}
    assert r["lst"] == {"L": [{"S": "N"}, {"S": "c"}, {"S": "T"}]}
    assert r["fresh"] == {"N": "-2"} and r["ctr"] == {"N": "2"}
    assert r["more"] == {"L": [{"S": "first"}, {"S": "a"}, {"S": "b"}, {"S": "c"}]}
    assert sorted(r["nums"]["NS"]) == ["1", "2", "3"] and r["nums2"] == {"NS": ["2"]} and "gone" not in r
    updated = ddb.update_item(TableName=ranged, Key=key, UpdateExpression="SET #c = #c + :inc",
                              ExpressionAttributeNames={"#c": "count"}, ExpressionAttributeValues={":inc": {"N": "1"}},
                              ReturnValues="UPDATED_OLD")
    assert updated["Attributes"] == {"count": {"N": "7"}}
    updated = ddb.update_item(TableName=ranged, Key=key, UpdateExpression="SET m.inr = :v",
                              ExpressionAttributeValues={":v": {"S": "z"}}, ReturnValues="UPDATED_NEW")
    assert updated["Attributes"] == {"m": {"M": {"inr": {"S": "z"}}}}
    # deleting every element of a set removes the attribute
    ddb.update_item(TableName=ranged, Key=key, UpdateExpression="DELETE nums :all",
                    ExpressionAttributeValues={":all": {"NS": ["1", "2", "3"]}})
    assert "nums" not in get(ddb, ranged, **key)


def test_update_creates_missing_item_and_counters(ddb, simple):
    r = ddb.update_item(TableName=simple, Key={"pk": {"S": "counter"}}, UpdateExpression="ADD seq :one",
                        ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
    assert r["Attributes"] == {"seq": {"N": "1"}}
    ddb.update_item(TableName=simple, Key={"pk": {"S": "bare"}})
    assert get(ddb, simple, pk={"S": "bare"}) == {"pk": {"S": "bare"}}


@pytest.mark.parametrize("expression,values,message", [
    ("SET pk = :v", {":v": {"S": "x"}},
     "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"),
    ("SET a = :v, a.b = :v", {":v": {"S": "x"}},
     "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these "
     "paths; path one: [a], path two: [a, b]"),
    ("SET a.b = :v, a[0] = :v", {":v": {"S": "x"}},
     "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these "
     "paths; path one: [a, b], path two: [a, [0]]"),
    ("SET a = :v SET b = :v", {":v": {"S": "x"}},
     'Invalid UpdateExpression: The "SET" section can only be used once in an update expression;'),
    ("SET a = :v", {":v": {"S": "x"}, ":unused": {"S": "y"}},
     "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}"),
    ("SET a = :nope", {":v": {"S": "x"}},
     "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: "
     ":nope"),
    ("SET status = :v", {":v": {"S": "x"}},
     "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status"),
    ("ADD a :v", {":v": {"S": "x"}},
     "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING"),
    ("SET a = ", {":v": {"S": "x"}}, 'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "="'),
    ("SET a = nope + :v", {":v": {"N": "1"}},
     "The provided expression refers to an attribute that does not exist in the item"),
    ("SET nope.deeper = :v", {":v": {"N": "1"}},
     "The document path provided in the update expression is invalid for update"),
    ("SET a = size(b)", {}, "Invalid UpdateExpression: The function is not allowed in an update expression; "
                            "function: size"),
    ("SET a = :v", {":v": {"SS": []}}, "ExpressionAttributeValues contains invalid value: One or more parameter "
                                       "values were invalid: An string set  may not be empty for key :v"),
    ("", {}, "Invalid UpdateExpression: The expression can not be empty;"),
])
def test_update_validation_messages(ddb, simple, expression, values, message):
    kwargs = {"ExpressionAttributeValues": values} if values else {}
    with pytest.raises(ClientError) as exc:
        ddb.update_item(TableName=simple, Key={"pk": {"S": "val"}}, UpdateExpression=expression, **kwargs)
    assert error(exc) == ("ValidationException", message)


@pytest.mark.parametrize("item,message", [
    ({"pk": {"N": "1"}}, "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"),
    ({"other": {"S": "x"}}, "One or more parameter values were invalid: Missing the key pk in the item"),
    ({"pk": {"S": ""}}, "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
                        "contain an empty string value. Key: pk"),
    ({"pk": {"S": "k"}, "s": {"SS": ["a", "a"]}},
     "One or more parameter values were invalid: Input collection [a, a] contains duplicates."),
    ({"pk": {"S": "k"}, "s": {"NS": []}}, "One or more parameter values were invalid: An number set  may not be empty"),
    ({"pk": {"S": "k"}, "n": {"N": "1" * 39}}, "Attempting to store more than 38 significant digits in a Number"),
    ({"pk": {"S": "k"}, "n": {"N": "1E+126"}},
     "Number overflow. Attempting to store a number with magnitude larger than supported range"),
    ({"pk": {"S": "k"}, "n": {"N": "1E-131"}},
     "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
    ({"pk": {"S": "k"}, "n": {"N": "abc"}}, "A value provided cannot be converted into a number"),
    ({"pk": {"S": "k"}, "n": {"S": "a", "N": "1"}}, "Supplied AttributeValue has more than one datatypes set, must "
                                                    "contain exactly one of the supported datatypes"),
    ({"pk": {"S": "k"}, "n": {}}, "Supplied AttributeValue is empty, must contain exactly one of the supported "
                                  "datatypes"),
    ({"pk": {"S": "k"}, "big": {"S": "x" * 400 * 1024}}, "Item size has exceeded the maximum allowed size"),
])
def test_put_validation_messages(ddb, simple, item, message):
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=simple, Item=item)
    assert error(exc) == ("ValidationException", message)


def test_key_and_table_errors(ddb, simple):
    with pytest.raises(ClientError) as exc:
        ddb.get_item(TableName=simple, Key={"pk": {"S": "a"}, "extra": {"S": "b"}})
    assert error(exc) == ("ValidationException", "The provided key element does not match the schema")
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.get_item(TableName="no-such-table", Key={"pk": {"S": "a"}})
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=simple, Item={"pk": {"S": "a"}}, ExpressionAttributeValues={":v": {"S": "x"}})
    assert error(exc) == ("ValidationException",
                          "ExpressionAttributeValues can only be specified when using expressions")
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=simple, Item={"pk": {"S": "a"}}, ConditionExpression="a = :v",
                     Expected={"a": {"Exists": False}}, ExpressionAttributeValues={":v": {"S": "x"}})
    assert error(exc)[1].startswith("Can not use both expression and non-expression parameters")


def test_number_semantics(ddb, ranged):
    big = "9" * 38
    ddb.put_item(TableName=ranged, Item={"pk": {"S": "num"}, "sk": {"N": "1"}, "n": {"N": big},
                                         "f": {"N": "0.000100"}, "e": {"N": "1.5e3"}, "neg": {"N": "-0"}})
    got = get(ddb, ranged, pk={"S": "num"}, sk={"N": "1.000"})  # 1.000 finds the item stored as 1
    assert got["n"] == {"N": big} and got["f"] == {"N": "0.0001"} and got["e"] == {"N": "1500"}
    assert got["neg"] == {"N": "0"}
    with pytest.raises(ClientError) as exc:  # 39 significant digits after adding
        ddb.update_item(TableName=ranged, Key={"pk": {"S": "num"}, "sk": {"N": "1"}}, UpdateExpression="ADD n :tiny",
                        ExpressionAttributeValues={":tiny": {"N": "0.1"}})
    assert error(exc)[1] == "Attempting to store more than 38 significant digits in a Number"
    r = ddb.update_item(TableName=ranged, Key={"pk": {"S": "num"}, "sk": {"N": "1"}}, UpdateExpression="SET f = f + :x",
                        ExpressionAttributeValues={":x": {"N": "0.0002"}}, ReturnValues="UPDATED_NEW")
    assert r["Attributes"]["f"] == {"N": "0.0003"}  # decimal, not binary floating point


def test_batch_write_and_get(ddb, ranged):
    writes = [{"PutRequest": {"Item": {"pk": {"S": "batch"}, "sk": {"N": str(i)}}}} for i in range(25)]
    assert ddb.batch_write_item(RequestItems={ranged: writes})["UnprocessedItems"] == {}
    keys = [{"pk": {"S": "batch"}, "sk": {"N": str(i)}} for i in range(0, 30, 3)]
    r = ddb.batch_get_item(RequestItems={ranged: {"Keys": keys, "ProjectionExpression": "sk"}})
    assert sorted(int(i["sk"]["N"]) for i in r["Responses"][ranged]) == list(range(0, 25, 3))
    assert r["UnprocessedKeys"] == {}
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(RequestItems={ranged: writes + writes[:1]})
    assert error(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ddb.batch_write_item(RequestItems={ranged: writes[:2] + writes[:1]})
    assert error(exc) == ("ValidationException", "Provided list of item keys contains duplicates")
    with pytest.raises(ClientError) as exc:
        ddb.batch_get_item(RequestItems={ranged: {"Keys": keys * 11}})
    assert error(exc) == ("ValidationException", "Too many items requested for the BatchGetItem call")
    deletes = [{"DeleteRequest": {"Key": {"pk": {"S": "batch"}, "sk": {"N": str(i)}}}} for i in range(25)]
    ddb.batch_write_item(RequestItems={ranged: deletes})
    assert ddb.batch_get_item(RequestItems={ranged: {"Keys": keys}})["Responses"][ranged] == []


def test_resource_api_batch_writer_and_conditions(unkai, ranged):
    table = unkai.resource("dynamodb").Table(ranged)
    with table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
        for i in range(60):
            writer.put_item(Item={"pk": "res", "sk": i, "even": i % 2 == 0, "tags": {"a", "b"}, "blob": b"\x01"})
    table.update_item(Key={"pk": "res", "sk": 3}, UpdateExpression="SET hits = :h",
                      ConditionExpression=Attr("even").eq(False) & Attr("tags").contains("a"),
                      ExpressionAttributeValues={":h": Decimal("1.25")})
    item = table.get_item(Key={"pk": "res", "sk": 3})["Item"]
    assert item["hits"] == Decimal("1.25") and item["tags"] == {"a", "b"} and item["blob"].value == b"\x01"
    with pytest.raises(ClientError):
        table.put_item(Item={"pk": "res", "sk": 3}, ConditionExpression=Attr("pk").not_exists())


def test_legacy_parameters(ddb, simple):
    ddb.put_item(TableName=simple, Item={"pk": {"S": "legacy"}, "v": {"N": "1"}},
                 Expected={"pk": {"Exists": False}})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=simple, Item={"pk": {"S": "legacy"}}, Expected={"pk": {"Exists": False}})
    ddb.update_item(TableName=simple, Key={"pk": {"S": "legacy"}},
                    AttributeUpdates={"v": {"Action": "ADD", "Value": {"N": "2"}},
                                      "l": {"Action": "ADD", "Value": {"L": [{"S": "x"}]}},
                                      "s": {"Action": "PUT", "Value": {"S": "y"}}},
                    Expected={"v": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}})
    item = get(ddb, simple, pk={"S": "legacy"})
    assert item["v"] == {"N": "3"} and item["l"] == {"L": [{"S": "x"}]} and item["s"] == {"S": "y"}
    ddb.update_item(TableName=simple, Key={"pk": {"S": "legacy"}}, AttributeUpdates={"s": {"Action": "DELETE"}},
                    Expected={"v": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "2"}, {"N": "4"}]},
                              "nope": {"ComparisonOperator": "NULL"}}, ConditionalOperator="AND")
    assert "s" not in get(ddb, simple, pk={"S": "legacy"})


def test_consumed_capacity(ddb, simple):
    r = ddb.put_item(TableName=simple, Item={"pk": {"S": "cap"}, "x": {"S": "y" * 2000}}, ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"] == {"TableName": simple, "CapacityUnits": 2.0}
    r = ddb.get_item(TableName=simple, Key={"pk": {"S": "cap"}}, ReturnConsumedCapacity="TOTAL")
    assert r["ConsumedCapacity"]["CapacityUnits"] == 0.5


@pytest.mark.parametrize("expression,names,values,message", [
    ("a = :v", {"#unused": "x"}, {":v": {"S": "x"}},
     "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}"),
    ("#nope = :v", None, {":v": {"S": "x"}},
     "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; "
     "attribute name: #nope"),
    ("attribute_type(a, :t)", None, {":t": {"S": "X"}},
     "Invalid ConditionExpression: Invalid attribute type name found; type: X, valid types: "
     "{ B,BOOL,BS,L,M,N,NS,NULL,S,SS }"),
    ("a BETWEEN :hi AND :lo", None, {":hi": {"N": "5"}, ":lo": {"N": "1"}},
     "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower "
     "bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}"),
    ("begins_with(a, :n)", None, {":n": {"N": "1"}},
     "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: "
     "begins_with, operand type: N"),
    ("a = :v AND", None, {":v": {"S": "x"}}, 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "AND"'),
    ("foo(a)", None, None, "Invalid ConditionExpression: Invalid function name; function: foo"),
    ("size(a)", None, None, 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ")"'),
])
def test_condition_validation_messages(ddb, simple, expression, names, values, message):
    kwargs = {}
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if values:
        kwargs["ExpressionAttributeValues"] = values
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=simple, Item={"pk": {"S": "cond"}}, ConditionExpression=expression, **kwargs)
    assert error(exc) == ("ValidationException", message)


def test_conditions_on_nested_paths(ddb, simple):
    put(ddb, simple, pk={"S": "nest"}, doc={"M": {"tags": {"L": [{"S": "x"}, {"N": "2"}]}, "n": {"NULL": True}}})
    ok = {":x": {"S": "x"}, ":two": {"N": "2"}}
    ddb.delete_item(TableName=simple, Key={"pk": {"S": "nest"}}, ExpressionAttributeValues=ok,
                    ConditionExpression="doc.tags[0] = :x AND doc.tags[1] = :two AND contains(doc.tags, :x) AND "
                                        "size(doc.tags) = :two AND NOT attribute_exists(doc.tags[2])")
    assert get(ddb, simple, pk={"S": "nest"}) is None
