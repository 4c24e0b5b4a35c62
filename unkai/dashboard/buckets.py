"""View 6, buckets: objects browsed by prefix (ListObjectsV2 with a delimiter), download
(S3's ``object_bytes`` contract) and upload by form or drag and drop (``put_object_bytes``,
so notifications fire as for PutObject), and the website URL when one is configured."""

from __future__ import annotations

import mimetypes
from typing import TYPE_CHECKING
from urllib.parse import quote

from unkai.dashboard import reads
from unkai.dashboard.html import e, link, page, table
from unkai.http import BodyTooLarge, Request, Response
from unkai.protocol import ServiceError

if TYPE_CHECKING:
    from unkai.dashboard.routes import Dashboard

MAX_UPLOAD = 64 * 1024 * 1024


async def index(dash: "Dashboard", request: Request, m: object) -> Response:
    rows = [[link(f"/_unkai/ui/buckets/{b['Name']}", b["Name"]), e(b.get("CreationDate"))]
            for b in reads.buckets(dash.cloud, dash.region)]
    body = table(["Bucket", "Created"], rows, caption="Buckets", empty="No buckets.")
    return page("Buckets", "ui/buckets", body, dash.live(view="buckets"))


async def detail(dash: "Dashboard", request: Request, m: object) -> Response:
    name = m["name"]  # type: ignore[index]
    prefix = request.query_dict().get("prefix", "")
    listing = reads.call(dash.cloud, "s3", "ListObjectsV2", {"Bucket": name, "Prefix": prefix, "Delimiter": "/",
                                                              "MaxKeys": 1000}, dash.region)
    if not listing:
        return page("No such bucket", "ui/buckets", f"<p>There is no bucket {e(name)}.</p>")
    base = f"/_unkai/ui/buckets/{quote(name)}"
    rows = [[link(f"{base}?prefix={quote(p['Prefix'])}", p["Prefix"][len(prefix):]), "folder", ""]
            for p in listing.get("CommonPrefixes") or []]
    rows += [[link(f"{base}/object?key={quote(o['Key'])}", o["Key"][len(prefix):]), e(o.get("Size")),
              e(o.get("LastModified"))] for o in listing.get("Contents") or []]
    crumbs = [link(base, name)]
    acc = ""
    for part in [p for p in prefix.split("/") if p]:
        acc += part + "/"
        crumbs.append(link(f"{base}?prefix={quote(acc)}", part))
    website = reads.call(dash.cloud, "s3", "GetBucketWebsite", {"Bucket": name}, dash.region)
    site = ""
    if website:
        port = dash.cloud.config.port
        url = f"http://{name}.s3-website.localhost:{port}/"
        site = f"<p>Website: {link(url, url)}</p>"
    body = f"""
<nav aria-label="Prefix" class="crumbs">{" / ".join(crumbs)}</nav>
{site}
{table(["Key", "Size", "Last modified"], rows, empty="No objects here.")}
<h2 id="upload-title">Upload</h2>
<form id="upload" data-action="upload" data-url="{base}/object" data-prefix="{e(prefix)}" class="dropzone"
 aria-labelledby="upload-title">
<label for="file">File (or drop files here)</label><input id="file" name="file" type="file" multiple>
<button type="submit">Upload to {e(name)}/{e(prefix)}</button></form>
<p id="action-result" role="status" aria-live="polite"></p>
"""
    return page(f"Bucket {name}", "ui/buckets", body, dash.live(view="bucket"))


async def download(dash: "Dashboard", request: Request, m: object) -> Response:
    name, key = m["name"], request.query_dict().get("key", "")  # type: ignore[index]
    try:
        data = dash.cloud.service("s3").object_bytes(name, key)
    except ServiceError as exc:
        return Response.json({"message": f"{exc.code}: {exc.message}"}, 404)
    filename = key.rsplit("/", 1)[-1].replace('"', "") or "object"
    return Response(200, [("content-type", "application/octet-stream"), ("x-content-type-options", "nosniff"),
                          ("content-disposition", f"attachment; filename*=UTF-8''{quote(filename)}")], data)


async def upload(dash: "Dashboard", request: Request, m: object) -> Response:
    name, key = m["name"], request.query_dict().get("key", "")  # type: ignore[index]
    if not key:
        return Response.json({"message": "?key= names the object"}, 400)
    try:
        data = await request.body(MAX_UPLOAD)
    except BodyTooLarge:
        return Response.json({"message": f"the dashboard uploads {MAX_UPLOAD} bytes at most"}, 413)
    ctype = request.headers.get("content-type") or mimetypes.guess_type(key)[0] or "application/octet-stream"
    try:
        with dash.cloud.store.transaction():
            dash.cloud.service("s3").put_object_bytes(name, key, data, ctype, dash.region)
    except ServiceError as exc:
        return Response.json({"message": f"{exc.code}: {exc.message}"}, 400)
    return Response.json({"message": f"Uploaded {key} ({len(data)} bytes)."})
