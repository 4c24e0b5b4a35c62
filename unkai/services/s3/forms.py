"""Browser form uploads: POST Object with a signed policy (what boto3's
``generate_presigned_post`` prepares, and what a signup page's ``<form enctype=
"multipart/form-data">`` sends).

botocore's model has no operation for it (a POST to the bucket with a multipart body), so it is
served by a gateway mount in front of the S3 API. The form is checked as AWS checks it
(docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html): the policy's
expiration on unkai's clock, every condition (exact, ``eq``, ``starts-with``,
``content-length-range``), no field the policy does not name, and, when unkai verifies
signatures, the policy's SigV4 (or SigV2) signature. The file is then stored through the same
path as PutObject, so notifications, versioning and encryption apply."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import urllib.parse
import uuid
from typing import Any, AsyncIterator
from xml.sax.saxutils import escape

from unkai.http import Request, Response
from unkai.protocol import PROTOCOLS, ServiceError
from unkai.services.s3 import addressing
from unkai.services.s3.objects import check_key, object_meta
from unkai.services.s3.state import S3Error

MAX_FORM = 5 * 1024 * 1024 * 1024  # S3's largest single upload
# fields the policy need not name (AWS's list): the signature's own, the file, and x-ignore-*
UNSIGNED = {"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file", "x-amz-security-token"}


def denied(message: str) -> ServiceError:
    return S3Error("AccessDenied", message, status=403)


def split_form(body: bytes, content_type: str) -> list[tuple[str, str | None, dict[str, str], bytes]]:
    """The parts of a multipart/form-data body: (name, filename, headers, data), in order."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise S3Error("MalformedPOSTRequest", "The body of your POST request is not well-formed "
                      "multipart/form-data.")
    delimiter = b"--" + match[1].encode("latin-1")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise S3Error("MalformedPOSTRequest", "The body of your POST request is not well-formed "
                          "multipart/form-data.")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        disposition = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is None:
            continue
        parts.append((name[1], filename[1] if filename else None, headers, data))
    return parts


def _iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def check_policy(policy: dict, fields: dict[str, str], bucket: str, size: int, now: float) -> None:
    """Raise what S3 answers when the form breaks its policy."""
    try:
        expires = _iso(policy["expiration"])
    except (KeyError, TypeError, ValueError):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value.") from None
    if now > expires:
        raise denied("Invalid according to Policy: Policy expired.")
    named = {"bucket"}
    values = dict(fields, bucket=bucket)
    for condition in policy.get("conditions") or []:
        if isinstance(condition, dict):
            for key, want in condition.items():
                named.add(key.lower())
                if values.get(key.lower()) != want:
                    raise denied(f"Invalid according to Policy: Policy Condition failed: "
                                 f'["eq", "${key}", "{want}"]')
            continue
        if not isinstance(condition, list) or not condition:
            raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid Simple-Condition: "
                          "Simple-Conditions must have exactly one property specified.")
        op = str(condition[0]).lower()
        if op == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if size > high:
                raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                              ProposedSize=str(size), MaxSizeAllowed=str(high))
            if size < low:
                raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size",
                              ProposedSize=str(size), MinSizeAllowed=str(low))
            continue
        if op not in ("eq", "starts-with") or len(condition) != 3:
            raise S3Error("InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {json.dumps(condition)}")
        key = str(condition[1]).lstrip("$").lower()
        named.add(key)
        have, want = values.get(key, ""), str(condition[2])
        if (op == "eq" and have != want) or (op == "starts-with" and not have.startswith(want)):
            raise denied(f"Invalid according to Policy: Policy Condition failed: "
                         f'["{op}", "${condition[1].lstrip("$")}", "{want}"]')
    extra = [k for k in fields if k not in named and k not in UNSIGNED and not k.startswith("x-ignore-")]
    if extra:
        raise denied(f"Invalid according to Policy: Extra input fields: {extra[0]}")


def signature_ok(fields: dict[str, str], policy_b64: str, secret_of: Any) -> bool:
    """The form's signature over the base64 policy: SigV4 (x-amz-signature) or SigV2."""
    if "x-amz-signature" in fields:
        try:
            access_key, date, region, service, _ = fields["x-amz-credential"].split("/")
        except (KeyError, ValueError):
            return False
        secret = secret_of(access_key)
        if secret is None:
            return False
        key = ("AWS4" + secret).encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, fields["x-amz-signature"])
    secret = secret_of(fields.get("awsaccesskeyid", ""))
    if secret is None:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), policy_b64.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(expected, fields.get("signature", ""))


class _FormBody:
    """The file part as the object store's ``receive`` reads a request body."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.headers = {"content-length": str(len(data))}

    async def stream(self) -> AsyncIterator[bytes]:
        yield self.data


class FormOps:
    """Mixed into the S3 service."""

    cloud: Any
    config: Any
    clock: Any
    model: Any

    def start_forms(self) -> None:
        self.cloud.gateway.mount(self._is_form_post, self._form_post)

    def _is_form_post(self, request: Request) -> bool:
        if request.method != "POST" or not (request.headers.get("content-type") or "").lower().startswith(
                "multipart/form-data"):
            return False
        route = self.cloud.gateway.router.resolve(request, None)
        if route is None or route.service != "s3":
            return False
        path = request.path.strip("/")
        return (addressing.virtual_bucket(request) is not None and path == "") or \
            (addressing.virtual_bucket(request) is None and path != "" and "/" not in path)

    async def _form_post(self, request: Request) -> Response:
        try:
            return await self._store_form(request)
        except ServiceError as error:
            response = PROTOCOLS["rest-xml"].serialize_error(self.model, error, str(uuid.uuid4()))
            self.finish_response(request, response)  # type: ignore[attr-defined]
            return response

    async def _store_form(self, request: Request) -> Response:
        bucket_name = addressing.virtual_bucket(request) or request.path.strip("/")
        body = await request.body(MAX_FORM)
        fields: dict[str, str] = {}
        raw_fields: dict[str, str] = {}
        file_data: bytes | None = None
        filename = ""
        file_type = None
        for name, part_filename, headers, data in split_form(body, request.headers.get("content-type") or ""):
            if name.lower() == "file":
                file_data, filename, file_type = data, part_filename or "", headers.get("content-type")
                break  # AWS ignores fields after the file
            fields[name.lower()] = data.decode("utf-8", "replace")
            raw_fields[name] = fields[name.lower()]
        if file_data is None:
            raise S3Error("InvalidArgument", "POST requires exactly one file upload per request.",
                          ArgumentName="file", ArgumentValue="0")
        if "key" not in fields:
            raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, "
                          "please check the order of the fields.", ArgumentName="key", ArgumentValue="")
        fields["key"] = fields["key"].replace("${filename}", filename)
        if "policy" in fields:
            try:
                policy = json.loads(base64.b64decode(fields["policy"]))
            except ValueError:
                raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
            if self.config.verify_signatures and not signature_ok(fields, fields["policy"], self._secret_of):
                raise S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                              "signature you provided. Check your key and signing method.", status=403)
            check_policy(policy, fields, bucket_name, len(file_data), self.clock.now())
        elif self.config.verify_signatures:  # an anonymous form: only a public-write bucket takes it
            raise denied("Access Denied")
        key = fields["key"]
        check_key(key)
        params: dict[str, Any] = {"Bucket": bucket_name, "Key": key,
                                  "ContentType": fields.get("content-type") or file_type or "binary/octet-stream"}
        for header, member in (("cache-control", "CacheControl"), ("content-disposition", "ContentDisposition"),
                               ("content-encoding", "ContentEncoding"), ("expires", "Expires"), ("acl", "ACL"),
                               ("x-amz-server-side-encryption", "ServerSideEncryption"),
                               ("x-amz-storage-class", "StorageClass"), ("tagging", "Tagging")):
            if fields.get(header):
                params[member] = fields[header]
        params["Metadata"] = {k[len("x-amz-meta-"):]: v for k, v in fields.items() if k.startswith("x-amz-meta-")}
        ctx = _context(self, request)
        with self.store.transaction():  # type: ignore[attr-defined]
            self._acl_allowed(self._bucket(bucket_name), params.get("ACL"), False)  # type: ignore[attr-defined]
        received = await self.blobs.receive(_FormBody(file_data), "CRC64NVME")  # type: ignore[attr-defined]
        bucket, obj = self._store_received(ctx, bucket_name, key, received, object_meta(params),  # type: ignore
                                           "ObjectCreated:Post", params)
        location = f"{ctx.base_url}/{bucket.name}/{urllib.parse.quote(key)}"
        headers = [("ETag", obj.etag), ("Location", location)]
        if bucket.versioned:
            headers.append(("x-amz-version-id", obj.version_id))
        redirect = fields.get("success_action_redirect") or fields.get("redirect")
        if redirect:
            query = urllib.parse.urlencode({"bucket": bucket.name, "key": key, "etag": obj.etag})
            headers[1] = ("Location", redirect + ("&" if "?" in redirect else "?") + query)
            response = Response(303, headers, b"")
        else:
            status = fields.get("success_action_status")
            if status == "201":
                xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Location>{escape(location)}'
                       f"</Location><Bucket>{escape(bucket.name)}</Bucket><Key>{escape(key)}</Key>"
                       f"<ETag>{escape(obj.etag)}</ETag></PostResponse>")
                response = Response(201, headers + [("Content-Type", "application/xml")], xml.encode())
            else:
                response = Response(200 if status == "200" else 204, headers, b"")
        self.finish_response(request, response)  # type: ignore[attr-defined]
        return response

    def _secret_of(self, access_key: str) -> str | None:
        identity = self.cloud.service("sts").credential(access_key)
        return identity.secret if identity is not None else None


def _context(service: Any, request: Request) -> Any:
    """A RequestContext for the form's request (its region is the bucket's endpoint's)."""
    from unkai.services import RequestContext

    route = service.cloud.gateway.router.resolve(request, None)
    return RequestContext(service="s3", operation="PostObject", region=route.region if route else
                          service.config.region, account=service.config.account_id, request_id=str(uuid.uuid4()),
                          request=request, protocol="rest-xml")
