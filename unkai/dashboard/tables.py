"""View 5, tables: items browsed (Scan, a page at a time) and queried by key on the table
or an index (Query), an item editor taking DynamoDB JSON (PutItem, DeleteItem), and the
table's stream records (the DynamoDB Streams ``stream_records`` contract)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from unkai.dashboard import reads
from unkai.dashboard.html import e, link, page, table, when
from unkai.http import BodyTooLarge, Request, Response
from unkai.protocol import ServiceError

if TYPE_CHECKING:
    from unkai.dashboard.routes import Dashboard

PAGE = 50


async def index(dash: "Dashboard", request: Request, m: object) -> Response:
    rows = []
    for name in reads.tables(dash.cloud, dash.region):
        t = reads.table(dash.cloud, dash.region, name)
        keys = ", ".join(f"{k['AttributeName']} ({k['KeyType']})" for k in t.get("KeySchema", []))
        rows.append([link(f"/_unkai/ui/tables/{name}", name), e(keys), e(t.get("ItemCount")),
                     e((t.get("StreamSpecification") or {}).get("StreamViewType", ""))])
    body = table(["Table", "Key", "Items", "Stream"], rows, caption="Tables", empty="No tables in this region.")
    return page("Tables", "ui/tables", body, dash.live(view="tables"))


def _plain(value: dict) -> Any:
    """A DynamoDB JSON attribute value as plain JSON, for the key column."""
    (kind, v), = value.items()
    return v if kind in ("S", "N") else json.dumps(value)


async def detail(dash: "Dashboard", request: Request, m: object) -> Response:
    name = m["name"]  # type: ignore[index]
    t = reads.table(dash.cloud, dash.region, name)
    if not t:
        return page("No such table", "ui/tables", f"<p>There is no table {e(name)} in {e(dash.region)}.</p>")
    q = request.query_dict()
    keys = [k["AttributeName"] for k in t["KeySchema"]]
    indexes = {ix["IndexName"]: [k["AttributeName"] for k in ix["KeySchema"]]
               for ix in t.get("GlobalSecondaryIndexes", []) + t.get("LocalSecondaryIndexes", [])}
    types = {a["AttributeName"]: a["AttributeType"] for a in t.get("AttributeDefinitions", [])}
    params: dict[str, Any] = {"TableName": name, "Limit": PAGE}
    if q.get("start"):
        try:
            params["ExclusiveStartKey"] = json.loads(q["start"])
        except ValueError:
            pass
    index = q.get("index") or ""
    if index and index not in indexes:
        index = ""
    if index:
        params["IndexName"] = index
    value = q.get("key", "")
    if value:
        pk = (indexes[index] if index else keys)[0]
        params.update(KeyConditionExpression="#k = :v", ExpressionAttributeNames={"#k": pk},
                      ExpressionAttributeValues={":v": {types.get(pk, "S"): value}})
        answer = reads.call(dash.cloud, "dynamodb", "Query", params, dash.region)
        error = "" if answer else f"<p class=\"bad\">The query on {e(pk)} = {e(value)} failed.</p>"
    else:
        answer = reads.call(dash.cloud, "dynamodb", "Scan", params, dash.region)
        error = ""
    items = answer.get("Items", [])
    rows = []
    for item in items:
        key = {k: item[k] for k in keys if k in item}
        rows.append([e(" / ".join(str(_plain(item[k])) for k in keys if k in item)),
                     f'<pre>{e(json.dumps(item, ensure_ascii=False, indent=1)[:3000])}</pre>',
                     f'<button type="button" data-edit="{e(json.dumps(item, ensure_ascii=False))}">Edit</button> '
                     f'<button type="button" data-delete="{e(json.dumps(key, ensure_ascii=False))}" '
                     f'data-url="/_unkai/ui/tables/{e(name)}/delete">Delete</button>'])
    more = ""
    if answer.get("LastEvaluatedKey"):
        from urllib.parse import urlencode

        nxt = urlencode({**{k: v for k, v in q.items() if k != "start"},
                         "start": json.dumps(answer["LastEvaluatedKey"])})
        more = f'<p><a href="?{e(nxt)}">Next page</a></p>'
    options = "".join(f'<option value="{e(ix)}"{" selected" if ix == index else ""}>{e(ix)}</option>'
                      for ix in indexes)
    stream = ""
    stream_arn = t.get("LatestStreamArn")
    if stream_arn and (t.get("StreamSpecification") or {}).get("StreamEnabled"):
        try:
            records = dash.cloud.service("dynamodbstreams").stream_records(stream_arn, None, 1000)[-20:][::-1]
        except ServiceError:
            records = []
        stream = "<h2>Stream records <small>(newest first)</small></h2>" + table(
            ["Time", "Event", "Keys"],
            [[e(when(r["dynamodb"].get("ApproximateCreationDateTime"))), e(r.get("eventName")),
              f"<code>{e(json.dumps(r['dynamodb'].get('Keys'), ensure_ascii=False))}</code>"] for r in records],
            empty="No stream records yet.")
    key_desc = ", ".join(f"{k} ({types.get(k, '?')})" for k in keys)
    body = f"""
<p>Key: <code>{e(key_desc)}</code> · {e(t.get("ItemCount"))} items</p>
<form method="get" class="inline" aria-label="Query by key">
<label for="index">Index</label><select id="index" name="index"><option value="">(the table)</option>{options}</select>
<label for="key">Partition key value</label><input id="key" name="key" value="{e(value)}">
<button type="submit">Query</button> <a href="/_unkai/ui/tables/{e(name)}">Scan all</a></form>
{error}
{table(["Key", "Item (DynamoDB JSON)", ""], rows, empty="No items.")}
{more}
<h2 id="editor-title">Item editor</h2>
<form id="item-editor" data-action="post" data-url="/_unkai/ui/tables/{e(name)}/item" aria-labelledby="editor-title">
<label for="item">Item (DynamoDB JSON, e.g. {{"{e(keys[0])}": {{"S": "..."}}}})</label>
<textarea id="item" name="item" rows="8" spellcheck="false"></textarea>
<button type="submit">Save item</button></form>
<p id="action-result" role="status" aria-live="polite"></p>
{stream}
"""
    return page(f"Table {name}", "ui/tables", body, dash.live(view="table", table=name))


async def _json_body(request: Request) -> dict:
    try:
        data = json.loads(await request.body(400_000) or b"{}")
    except (ValueError, BodyTooLarge):
        raise ValueError("send a JSON object of 400 KB at most") from None
    if not isinstance(data, dict):
        raise ValueError("send a JSON object")
    return data


async def put_item(dash: "Dashboard", request: Request, m: object) -> Response:
    try:
        form = await _json_body(request)
        item = json.loads(form["item"]) if isinstance(form.get("item"), str) else form.get("item")
    except (ValueError, KeyError) as exc:
        return Response.json({"message": f"The item is not DynamoDB JSON: {exc}"}, 400)
    try:
        dash.cloud.call("dynamodb", "PutItem", {"TableName": m["name"], "Item": item}, dash.region)  # type: ignore[index]
    except ServiceError as exc:
        return Response.json({"message": f"{exc.code}: {exc.message}"}, 400)
    return Response.json({"message": "Saved."})


async def delete_item(dash: "Dashboard", request: Request, m: object) -> Response:
    try:
        form = await _json_body(request)
        dash.cloud.call("dynamodb", "DeleteItem", {"TableName": m["name"], "Key": form.get("key")},  # type: ignore[index]
                        dash.region)
    except ValueError as exc:
        return Response.json({"message": str(exc)}, 400)
    except ServiceError as exc:
        return Response.json({"message": f"{exc.code}: {exc.message}"}, 400)
    return Response.json({"message": "Deleted."})
