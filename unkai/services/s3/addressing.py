"""How clients address buckets: path style (``host/bucket/key``) and virtual-host
style (``bucket.s3.amazonaws.com``, ``bucket.s3.us-east-1.amazonaws.com``,
``bucket.s3.localhost.localstack.cloud:4566``, ``bucket.localhost:4566``), and the
website endpoints (``bucket.s3-website-us-east-1.localhost:4566``)."""

from __future__ import annotations

import re

from unkai.http import Request

_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d"
_VIRTUAL = re.compile(
    r"^(?P<bucket>.+)\.s3(?:-(?:external-\d|" + _REGION + r"|accelerate))?(?:\.dualstack)?(?:\." + _REGION + r")?"
    r"\.(?:amazonaws\.com(?:\.cn)?|localhost\.localstack\.cloud|localhost)$")
_LOCALHOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*)\.localhost$")
_WEBSITE = re.compile(
    r"^(?P<bucket>.+)\.s3-website[.-](?P<region>" + _REGION + r")\.(?:amazonaws\.com|localhost|"
    r"localhost\.localstack\.cloud)$")


def hostname(request: Request) -> str:
    host = request.host.lower()
    if host.startswith("["):
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host


def virtual_bucket(request: Request) -> str | None:
    """The bucket a virtual-host style request names in its Host, or None for path style."""
    host = hostname(request)
    if not host or host[0].isdigit() and re.match(r"^[\d.]+$", host):
        return None
    m = _VIRTUAL.match(host) or _LOCALHOST.match(host)
    if m is None or m["bucket"] in ("s3", "s3-website") or ".s3-website" in m["bucket"] \
            or m["bucket"].startswith("s3-website"):
        return None
    return m["bucket"]


def website_bucket(request: Request) -> tuple[str, str] | None:
    """(bucket, region) when the Host is a website endpoint."""
    m = _WEBSITE.match(hostname(request))
    return (m["bucket"], m["region"]) if m else None


def to_path_style(request: Request) -> None:
    """Rewrite a virtual-host request in place so operations match path-style URIs."""
    bucket = virtual_bucket(request)
    if bucket is None:
        return
    request.state["signed_path"] = request.raw_path
    path = request.raw_path
    request.raw_path = f"/{bucket}" + (path if path != "/" else "")
    request._path = None
