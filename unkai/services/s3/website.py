"""Static website hosting: the bucket's WebsiteConfiguration and the website
endpoint that serves it: at ``/_unkai/website/{bucket}/`` on unkai's address (the
bucket's WebsiteURL, which any client calls as it is), and at the host names AWS uses
mapped to the local port (``http://{bucket}.s3-website-{region}.localhost:4566/``, also
``{bucket}.s3-website.{region}.localhost``), which browsers resolve. Index and error
documents, routing rules and redirects behave as on AWS; pages are HTML as AWS's are."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote, unquote

from unkai.http import Request, Response
from unkai.localurls import WEBSITE_PREFIX as PATH_PREFIX
from unkai.localurls import browser_form, path_url
from unkai.protocol.values import rfc822
from unkai.services import RequestContext
from unkai.services.s3 import addressing
from unkai.services.s3.buckets import public_policy
from unkai.services.s3.cors import cors_headers, match_rule
from unkai.services.s3.state import Bucket, S3Error, invalid_argument

_AWS_WEBSITE = re.compile(r"^https?://(?P<bucket>[^/]+)\.s3-website[.-](?P<region>[a-z]{2}(?:-[a-z]+)+-\d)"
                          r"\.amazonaws\.com(?P<rest>/.*)?$")


def website_url(bucket: str, endpoint: str) -> str:
    """A bucket website's local URL that any client calls as it is (``unkai/localurls.py``):
    the bucket's WebsiteURL and what a stack's Outputs carry."""
    return path_url(endpoint, PATH_PREFIX, bucket)


class WebsiteOps:
    """Mixed into the S3 service."""

    store: Any
    cloud: Any
    config: Any
    blobs: Any

    def start_website(self) -> None:
        self.cloud.gateway.mount(lambda r: addressing.website_bucket(r) is not None, self._serve_host)
        self.cloud.gateway.internal.route("*", r"/_unkai/website/(?P<bucket>[^/]+)(?P<rest>/.*)?", self._serve_path,
                                          access="public")

    # -- configuration ------------------------------------------------------------------

    def put_bucket_website(self, ctx: RequestContext, params: dict) -> dict:
        config = params.get("WebsiteConfiguration") or {}
        redirect_all = config.get("RedirectAllRequestsTo")
        if redirect_all:
            if any(config.get(k) for k in ("IndexDocument", "ErrorDocument", "RoutingRules")):
                raise invalid_argument("RedirectAllRequestsTo cannot be provided in conjunction with other Routing "
                                       "Rules.", "RedirectAllRequestsTo", "not null")
        else:
            suffix = (config.get("IndexDocument") or {}).get("Suffix")
            if suffix is None:
                raise invalid_argument("A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo "
                                       "is empty", "IndexDocument", "null")
            if not suffix or "/" in suffix:
                raise invalid_argument("The IndexDocument Suffix is not well formed", "IndexDocument", suffix)
        for rule in config.get("RoutingRules") or []:
            redirect = rule.get("Redirect") or {}
            if redirect.get("ReplaceKeyWith") and redirect.get("ReplaceKeyPrefixWith"):
                raise S3Error("InvalidRequest", "You can only define ReplaceKeyPrefix or ReplaceKey but not "
                                   "both.")
            code = redirect.get("HttpRedirectCode")
            if code and code not in ("301", "302", "303", "307", "308"):
                raise invalid_argument("The provided HTTP redirect code (" + code + ") is not valid. Valid codes "
                                       "are 3XX except 300.", "HttpRedirectCode", code)
        self._set_config(params["Bucket"], "Website", config)  # type: ignore[attr-defined]
        return {}

    def get_bucket_website(self, ctx: RequestContext, params: dict) -> dict:
        return dict(self._get_config(params["Bucket"], "Website",  # type: ignore[attr-defined]
                                     "NoSuchWebsiteConfiguration",
                                     "The specified bucket does not have a website configuration"))

    def delete_bucket_website(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "Website", None)  # type: ignore[attr-defined]
        return {}

    def banner(self) -> list[str]:
        """The website URLs of buckets with a website configuration, for ``unkai up``."""
        lines = []
        for name, region in self.store.all("SELECT name, region FROM s3_buckets WHERE config LIKE '%\"Website\"%' "
                                           "ORDER BY name"):
            url = website_url(name, self.config.endpoint) + "/"
            lines.append(f"Website    {url}   (in a browser also {browser_form(url, region)})")
        return lines

    def local_url(self, url: str) -> str | None:
        """An AWS website URL (in a stack's Outputs) as the local URL serving that bucket."""
        m = _AWS_WEBSITE.match(url)
        if m is None:
            return None
        return website_url(m["bucket"], self.config.endpoint) + (m["rest"] or "")

    # -- serving ------------------------------------------------------------------------

    async def _serve_host(self, request: Request) -> Response:
        bucket, _ = addressing.website_bucket(request)
        return self._serve(request, bucket, request.raw_path, "")

    async def _serve_path(self, request: Request, m: re.Match) -> Response:
        bucket = m["bucket"]
        if m["rest"] is None:
            return Response(302, [("Location", f"{PATH_PREFIX}{bucket}/")])
        return self._serve(request, bucket, m["rest"], f"{PATH_PREFIX}{bucket}")

    def _serve(self, request: Request, name: str, raw_path: str, base: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _page(405, "MethodNotAllowed", "The specified method is not allowed against this resource.",
                         [("Method", request.method), ("ResourceType", "OBJECT")])
        with self.store.transaction():
            bucket = self.bucket_named(name)  # type: ignore[attr-defined]
            if bucket is None:
                return _page(404, "NoSuchBucket", "The specified bucket does not exist", [("BucketName", name)])
            config = bucket.config.get("Website")
            if config is None:
                return _page(404, "NoSuchWebsiteConfiguration", "The specified bucket does not have a website "
                             "configuration", [("BucketName", name)])
            if self.config.verify_signatures and not public_policy(bucket.config.get("Policy")):
                # With credentials configured, as on AWS: a website serves only a bucket its policy makes public.
                return _page(403, "AccessDenied", "Access Denied", [])
            response = self._website_response(request, bucket, config, unquote(raw_path.lstrip("/")), base)
        origin = request.headers.get("origin")
        rule = match_rule(bucket.config.get("CORSRules") or [], origin, request.method, []) if origin else None
        if rule is not None:
            response.headers.extend(cors_headers(rule, origin, False, []))
        return response

    def _website_response(self, request: Request, bucket: Bucket, config: dict, key: str, base: str) -> Response:
        redirect_all = config.get("RedirectAllRequestsTo")
        if redirect_all:
            scheme = redirect_all.get("Protocol") or request.scheme
            return _redirect(f"{scheme}://{redirect_all['HostName']}/{quote(key)}", 301)
        suffix = config["IndexDocument"]["Suffix"]
        rules = config.get("RoutingRules") or []
        for rule in rules:
            condition = rule.get("Condition") or {}
            if "HttpErrorCodeReturnedEquals" not in condition and key.startswith(condition.get("KeyPrefixEquals", "")):
                return self._rule_redirect(request, rule, key, base)
        lookup = key + suffix if key == "" or key.endswith("/") else key
        obj = self._website_object(bucket, lookup)
        if obj is None and not lookup.endswith(suffix) and self._website_object(bucket, f"{key}/{suffix}"):
            return _redirect(f"{base}/{quote(key)}/", 302)
        if obj is not None:
            if obj.meta.get("WebsiteRedirectLocation"):
                return _redirect(obj.meta["WebsiteRedirectLocation"], 301)
            return self._object_response(request, obj, 200)
        for rule in rules:
            condition = rule.get("Condition") or {}
            if condition.get("HttpErrorCodeReturnedEquals") == "404" and \
                    key.startswith(condition.get("KeyPrefixEquals", "")):
                return self._rule_redirect(request, rule, key, base)
        error_key = (config.get("ErrorDocument") or {}).get("Key")
        if error_key:
            error_obj = self._website_object(bucket, error_key)
            if error_obj is not None:
                return self._object_response(request, error_obj, 404)
        return _page(404, "NoSuchKey", "The specified key does not exist.", [("Key", lookup)])

    def _website_object(self, bucket: Bucket, key: str) -> Any:
        obj = self._version(bucket, key, None)  # type: ignore[attr-defined]
        return None if obj is None or obj.delete_marker else obj

    def _rule_redirect(self, request: Request, rule: dict, key: str, base: str) -> Response:
        redirect = rule.get("Redirect") or {}
        prefix = (rule.get("Condition") or {}).get("KeyPrefixEquals", "")
        if redirect.get("ReplaceKeyWith") is not None:
            target = redirect["ReplaceKeyWith"]
        elif redirect.get("ReplaceKeyPrefixWith") is not None:
            target = redirect["ReplaceKeyPrefixWith"] + key[len(prefix):]
        else:
            target = key
        code = int(redirect.get("HttpRedirectCode") or 301)
        if redirect.get("HostName"):
            scheme = redirect.get("Protocol") or request.scheme
            return _redirect(f"{scheme}://{redirect['HostName']}/{quote(target)}", code)
        scheme = redirect.get("Protocol") or request.scheme
        return _redirect(f"{scheme}://{request.host}{base}/{quote(target)}", code)

    def _object_response(self, request: Request, obj: Any, status: int) -> Response:
        meta = obj.meta
        headers = [("Content-Type", meta.get("ContentType") or "binary/octet-stream"), ("ETag", obj.etag),
                   ("Last-Modified", rfc822(int(obj.modified))), ("Content-Length", str(obj.size))]
        for name, header in (("ContentEncoding", "Content-Encoding"), ("CacheControl", "Cache-Control"),
                             ("ContentDisposition", "Content-Disposition"), ("ContentLanguage", "Content-Language")):
            if meta.get(name):
                headers.append((header, meta[name]))
        for k, v in (meta.get("Metadata") or {}).items():
            headers.append((f"x-amz-meta-{k}", v))
        if request.method == "HEAD" or not obj.size:
            return Response(status, headers, b"")
        return Response(status, headers, self._plain_body(None, obj, 0, obj.size))


def _redirect(location: str, status: int) -> Response:
    return Response(status, [("Location", location), ("Content-Length", "0")], b"")


def _page(status: int, code: str, message: str, extra: list[tuple[str, str]]) -> Response:
    """The HTML error page a website endpoint answers with."""
    reason = {404: "Not Found", 403: "Forbidden", 405: "Method Not Allowed"}.get(status, "Error")
    items = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>\n" for k, v in [("Code", code), ("Message", message)]
                    + extra)
    body = (f"<html>\n<head><title>{status} {reason}</title></head>\n<body>\n<h1>{status} {reason}</h1>\n"
            f"<ul>\n{items}</ul>\n<hr/>\n</body>\n</html>\n")
    return Response(status, [("Content-Type", "text/html; charset=utf-8")], body.encode())
