"""REST API documentation: documentation parts (the description of an API, a resource, a
method... by its location) and documentation versions (snapshots a stage can point at), stored
in the API's documents and answered as AWS answers them. unkai does not export them into
OpenAPI yet."""

from __future__ import annotations

import json
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.apigateway.documents import new_id

LOCATION_TYPES = ("API", "AUTHORIZER", "MODEL", "RESOURCE", "METHOD", "PATH_PARAMETER", "QUERY_PARAMETER",
                  "REQUEST_HEADER", "REQUEST_BODY", "RESPONSE", "RESPONSE_HEADER", "RESPONSE_BODY")


def _bad(message: str) -> ServiceError:
    return ServiceError("BadRequestException", message)


def _location(raw: dict[str, Any]) -> dict[str, Any]:
    """A location with AWS's defaults filled in (path "/", method "*", statusCode "*" where they apply)."""
    kind = raw.get("type")
    if kind not in LOCATION_TYPES:
        raise _bad(f"Invalid documentation part type: {kind}")
    loc: dict[str, Any] = {"type": kind}
    if kind not in ("API", "AUTHORIZER", "MODEL"):
        loc["path"] = raw.get("path") or "/"
    if kind in ("METHOD", "PATH_PARAMETER", "QUERY_PARAMETER", "REQUEST_HEADER", "REQUEST_BODY", "RESPONSE",
                "RESPONSE_HEADER", "RESPONSE_BODY"):
        loc["method"] = raw.get("method") or "*"
    if kind in ("RESPONSE", "RESPONSE_HEADER", "RESPONSE_BODY"):
        loc["statusCode"] = raw.get("statusCode") or "*"
    if raw.get("name"):
        loc["name"] = raw["name"]
    return loc


class DocumentationOps:
    """Mixed into the API Gateway (REST) service."""

    docs: Any
    rest: Any
    clock: Any

    def _doc_part(self, ctx: RequestContext, api_id: str, part_id: str) -> dict:
        return self.rest.part(ctx, "docpart", api_id, part_id, "Documentation part")

    def create_documentation_part(self, ctx: RequestContext, params: dict) -> dict:
        api_id = params["restApiId"]
        self.rest.api(ctx, api_id)
        location = _location(params.get("location") or {})
        try:
            json.loads(params.get("properties") or "")
        except ValueError:
            raise _bad("Documentation part properties must be a valid JSON object.") from None
        for other in self.docs.list(ctx.account, ctx.region, "docpart", api_id):
            if other["location"] == location:
                raise ServiceError("ConflictException", "Documentation part already exists for the specified "
                                   "location")
        part = {"id": new_id(), "location": location, "properties": params["properties"]}
        return self.docs.put(ctx.account, ctx.region, "docpart", api_id, part["id"], part)

    def get_documentation_part(self, ctx: RequestContext, params: dict) -> dict:
        return self._doc_part(ctx, params["restApiId"], params["documentationPartId"])

    def get_documentation_parts(self, ctx: RequestContext, params: dict) -> dict:
        api_id = params["restApiId"]
        self.rest.api(ctx, api_id)
        items = self.docs.list(ctx.account, ctx.region, "docpart", api_id)
        if params.get("type"):
            items = [p for p in items if p["location"]["type"] == params["type"]]
        if params.get("path"):
            items = [p for p in items if p["location"].get("path") == params["path"]]
        if params.get("nameQuery"):
            items = [p for p in items if params["nameQuery"] in (p["location"].get("name") or "")]
        return {"items": items}

    def update_documentation_part(self, ctx: RequestContext, params: dict) -> dict:
        part = self._doc_part(ctx, params["restApiId"], params["documentationPartId"])
        for op in params.get("patchOperations") or []:
            if op.get("op") == "replace" and op.get("path") == "/properties":
                part["properties"] = op.get("value") or "{}"
            else:
                raise _bad(f"Invalid patch path {op.get('path')}")
        return self.docs.put(ctx.account, ctx.region, "docpart", params["restApiId"], part["id"], part)

    def delete_documentation_part(self, ctx: RequestContext, params: dict) -> dict:
        part = self._doc_part(ctx, params["restApiId"], params["documentationPartId"])
        self.docs.delete(ctx.account, ctx.region, "docpart", params["restApiId"], part["id"])
        return {}

    # -- versions ----------------------------------------------------------------------

    def _doc_version(self, ctx: RequestContext, api_id: str, version: str) -> dict:
        return self.rest.part(ctx, "docversion", api_id, version, "Documentation version")

    def create_documentation_version(self, ctx: RequestContext, params: dict) -> dict:
        api_id, version = params["restApiId"], params["documentationVersion"]
        self.rest.api(ctx, api_id)
        if self.docs.get(ctx.account, ctx.region, "docversion", api_id, version) is not None:
            raise ServiceError("ConflictException", f"Documentation version already exists: {version}")
        doc = {"version": version, "createdDate": self.clock.now()}
        if params.get("description"):
            doc["description"] = params["description"]
        doc["_parts"] = self.docs.list(ctx.account, ctx.region, "docpart", api_id)  # the snapshot
        self.docs.put(ctx.account, ctx.region, "docversion", api_id, version, doc)
        return {k: v for k, v in doc.items() if not k.startswith("_")}

    def get_documentation_version(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._doc_version(ctx, params["restApiId"], params["documentationVersion"])
        return {k: v for k, v in doc.items() if not k.startswith("_")}

    def get_documentation_versions(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.api(ctx, params["restApiId"])
        return {"items": [{k: v for k, v in d.items() if not k.startswith("_")}
                          for d in self.docs.list(ctx.account, ctx.region, "docversion", params["restApiId"])]}

    def update_documentation_version(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._doc_version(ctx, params["restApiId"], params["documentationVersion"])
        for op in params.get("patchOperations") or []:
            if op.get("path") == "/description":
                doc["description"] = op.get("value") or ""
            else:
                raise _bad(f"Invalid patch path {op.get('path')}")
        self.docs.put(ctx.account, ctx.region, "docversion", params["restApiId"], doc["version"], doc)
        return {k: v for k, v in doc.items() if not k.startswith("_")}

    def delete_documentation_version(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._doc_version(ctx, params["restApiId"], params["documentationVersion"])
        self.docs.delete(ctx.account, ctx.region, "docversion", params["restApiId"], doc["version"])
        return {}
