"""S3 static websites and CORS: the website endpoint (host and path forms), index and
error documents, routing rules and redirects, Content-Types, CORS preflights and
headers, the startup banner, and a real headless Chromium opening a site."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from browser import chromium

from unkai.testing import UnkaiServer


@pytest.fixture(scope="module")
def s3(unkai):
    return unkai.client("s3")


def port(unkai) -> int:
    return int(unkai.endpoint.rsplit(":", 1)[1])


def site_url(unkai, bucket: str, path: str = "/") -> str:
    return f"http://{bucket}.s3-website-us-east-1.localhost:{port(unkai)}{path}"


def get(unkai, bucket: str, path: str = "/", host_form: str = "s3-website-us-east-1", **kw) -> httpx.Response:
    """A request to the website endpoint, sent to 127.0.0.1 with the website's Host."""
    method = kw.pop("method", "GET")
    return httpx.request(method, f"{unkai.endpoint}{path}", follow_redirects=False,
                         headers={"Host": f"{bucket}.{host_form}.localhost:{port(unkai)}", **kw.pop("headers", {})},
                         **kw)


@pytest.fixture(scope="module")
def site(s3):
    name = f"site-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    files = {"index.html": ("<h1>ようこそ</h1>", "text/html; charset=utf-8"),
             "error.html": ("<h1>not here</h1>", "text/html"),
             "css/style.css": ("h1 { color: rgb(0, 128, 0) }", "text/css"),
             "docs/index.html": ("<p>docs</p>", "text/html"),
             "app.js": ("console.log(1)", "application/javascript"),
             "moved.html": ("", "text/html")}
    for key, (body, ctype) in files.items():
        extra = {"WebsiteRedirectLocation": "/docs/"} if key == "moved.html" else {}
        s3.put_object(Bucket=name, Key=key, Body=body.encode(), ContentType=ctype, **extra)
    s3.put_bucket_website(Bucket=name, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"},
        "RoutingRules": [
            {"Condition": {"KeyPrefixEquals": "old/"}, "Redirect": {"ReplaceKeyPrefixWith": "docs/"}},
            {"Condition": {"HttpErrorCodeReturnedEquals": "404", "KeyPrefixEquals": "gone/"},
             "Redirect": {"HostName": "example.com", "ReplaceKeyWith": "moved", "HttpRedirectCode": "302"}}]})
    return name


def test_index_error_documents_and_content_types(unkai, site):
    r = get(unkai, site)
    assert r.status_code == 200 and r.text == "<h1>ようこそ</h1>"
    assert r.headers["content-type"] == "text/html; charset=utf-8" and r.headers["etag"]
    assert get(unkai, site, "/css/style.css").headers["content-type"] == "text/css"
    assert get(unkai, site, "/docs/").text == "<p>docs</p>"
    r = get(unkai, site, "/docs")
    assert r.status_code == 302 and r.headers["location"] == "/docs/"
    r = get(unkai, site, "/nothing.html")
    assert r.status_code == 404 and r.text == "<h1>not here</h1>"
    assert get(unkai, site, "/", host_form="s3-website.us-east-1").text == "<h1>ようこそ</h1>"
    assert get(unkai, site, "/", method="HEAD").content == b""
    r = get(unkai, site, "/", method="POST")
    assert r.status_code == 405 and "MethodNotAllowed" in r.text


def test_routing_rules_and_redirects(unkai, site):
    r = get(unkai, site, "/old/page.html")
    assert r.status_code == 301 and r.headers["location"].endswith("/docs/page.html")
    r = get(unkai, site, "/gone/x")
    assert r.status_code == 302 and r.headers["location"] == "http://example.com/moved"
    r = get(unkai, site, "/moved.html")
    assert r.status_code == 301 and r.headers["location"] == "/docs/"


def test_path_form_and_missing_sites(unkai, s3, site):
    r = httpx.get(unkai.url(f"/_unkai/website/{site}/"))
    assert r.status_code == 200 and r.text == "<h1>ようこそ</h1>"
    assert httpx.get(unkai.url(f"/_unkai/website/{site}")).headers["location"] == f"/_unkai/website/{site}/"
    r = httpx.get(unkai.url(f"/_unkai/website/{site}/old/a.html"))
    assert r.status_code == 301 and r.headers["location"].endswith(f"/_unkai/website/{site}/docs/a.html")
    r = get(unkai, "no-such-bucket-here")
    assert r.status_code == 404 and "NoSuchBucket" in r.text and r.headers["content-type"].startswith("text/html")
    plain = f"plain-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=plain)
    assert "NoSuchWebsiteConfiguration" in get(unkai, plain).text


def test_website_configuration_api(s3, site):
    config = s3.get_bucket_website(Bucket=site)
    assert config["IndexDocument"] == {"Suffix": "index.html"} and len(config["RoutingRules"]) == 2
    with pytest.raises(s3.exceptions.ClientError) as exc:
        s3.put_bucket_website(Bucket=site, WebsiteConfiguration={"IndexDocument": {"Suffix": "a/b.html"}})
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    other = f"redir-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=other)
    s3.put_bucket_website(Bucket=other, WebsiteConfiguration={
        "RedirectAllRequestsTo": {"HostName": "www.example.org", "Protocol": "https"}})
    with pytest.raises(s3.exceptions.ClientError) as exc:
        s3.get_bucket_cors(Bucket=other)
    assert exc.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"
    s3.delete_bucket_website(Bucket=other)
    with pytest.raises(s3.exceptions.ClientError) as exc:
        s3.get_bucket_website(Bucket=other)
    assert exc.value.response["Error"]["Code"] == "NoSuchWebsiteConfiguration"


def test_redirect_all_requests(unkai, s3):
    name = f"all-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_website(Bucket=name, WebsiteConfiguration={
        "RedirectAllRequestsTo": {"HostName": "www.example.org", "Protocol": "https"}})
    r = get(unkai, name, "/a/b.html")
    assert r.status_code == 301 and r.headers["location"] == "https://www.example.org/a/b.html"


@pytest.fixture(scope="module")
def data_bucket(unkai, s3):
    name = f"data-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="data.json", Body=json.dumps({"answer": 42}).encode(),
                  ContentType="application/json")
    s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": [f"http://*.localhost:{port(unkai)}", "https://app.example.com"],
         "AllowedMethods": ["GET", "PUT"],
         "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]})
    return name


def test_cors_preflight_and_headers(unkai, s3, data_bucket):
    url = unkai.url(f"/{data_bucket}/data.json")
    ok = httpx.options(url, headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
                                     "Access-Control-Request-Headers": "Content-Type, X-Amz-Meta-A"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
    assert ok.headers["access-control-allow-methods"] == "GET, PUT"
    assert ok.headers["access-control-allow-headers"] == "content-type, x-amz-meta-a"
    assert ok.headers["access-control-max-age"] == "600"
    denied = httpx.options(url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert denied.status_code == 403 and b"<Code>AccessForbidden</Code>" in denied.content
    denied = httpx.options(url, headers={"Origin": "https://app.example.com",
                                         "Access-Control-Request-Method": "DELETE"})
    assert denied.status_code == 403
    got = httpx.get(url, headers={"Origin": "https://app.example.com"})
    assert got.json() == {"answer": 42}
    assert got.headers["access-control-allow-origin"] == "https://app.example.com"
    assert got.headers["access-control-expose-headers"] == "ETag"
    assert "access-control-allow-origin" not in httpx.get(url, headers={"Origin": "https://evil.example"}).headers
    assert s3.get_bucket_cors(Bucket=data_bucket)["CORSRules"][0]["MaxAgeSeconds"] == 600
    bare = f"bare-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bare)
    r = httpx.options(unkai.url(f"/{bare}/x"),
                      headers={"Origin": "https://a.b", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 403 and b"CORS is not enabled" in r.content
    with pytest.raises(s3.exceptions.ClientError) as exc:
        s3.put_bucket_cors(Bucket=bare, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]})
    assert exc.value.response["Error"]["Code"] == "InvalidRequest"


def test_chromium_opens_a_static_site(unkai, s3, data_bucket):
    """A real browser loads the page, its stylesheet and script from the website endpoint,
    and the script reads JSON from another bucket across origins (CORS)."""
    name = f"web-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    data = unkai.url(f"/{data_bucket}/data.json")
    pages = {
        "index.html": ('<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="style.css">'
                       '<script src="app.js" defer></script></head><body><h1>受講者からの質問</h1>'
                       '<form><textarea name="contact_detail"></textarea></form><p id="out">loading</p>'
                       "</body></html>", "text/html; charset=utf-8"),
        "style.css": ("h1 { color: rgb(0, 128, 0); }", "text/css"),
        "app.js": (f"fetch({json.dumps(data)}).then(r => r.json()).then(d => "
                   "{ document.getElementById('out').textContent = 'answer ' + d.answer; })"
                   ".catch(e => { document.getElementById('out').textContent = 'failed ' + e; });",
                   "application/javascript"),
        "404.html": ("<!doctype html><title>missing</title><h1>Nothing here</h1>", "text/html"),
    }
    for key, (body, ctype) in pages.items():
        s3.put_object(Bucket=name, Key=key, Body=body.encode(), ContentType=ctype)
    s3.put_bucket_website(Bucket=name, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"},
                                                             "ErrorDocument": {"Key": "404.html"}})
    with chromium() as browser:
        page = browser.new_page()
        response = page.goto(site_url(unkai, name))
        assert response.status == 200
        assert page.text_content("h1") == "受講者からの質問"
        assert page.eval_on_selector("h1", "e => getComputedStyle(e).color") == "rgb(0, 128, 0)"
        page.wait_for_function("document.getElementById('out').textContent !== 'loading'", timeout=10000)
        assert page.text_content("#out") == "answer 42"
        missing = page.goto(site_url(unkai, name, "/no/such/page"))
        assert missing.status == 404 and page.title() == "missing"


def test_unkai_up_prints_website_urls(tmp_path):
    server = UnkaiServer(tmp_path / "state").start()
    try:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="webexample000")
        s3.put_bucket_website(Bucket="webexample000", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
        server.kill()
        server.start()
        port = server.endpoint.rsplit(":", 1)[1]
        assert f"http://webexample000.s3-website-us-east-1.localhost:{port}/" in server.output()
        assert f"{server.endpoint}/_unkai/website/webexample000/" in server.output()
    finally:
        server.stop()
