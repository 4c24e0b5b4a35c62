"""Custom resources (``AWS::CloudFormation::CustomResource`` and ``Custom::*``): the
stack's own Lambda function (or SNS topic) is sent CloudFormation's request and
answers by PUTting its response to the ResponseURL, as on AWS.

The ResponseURL is served by unkai (``/_unkai/cloudformation/responses/{id}``), so the
usual helpers (``cfnresponse``, a plain ``urllib`` PUT) work unchanged. URLs of APIs
and websites in the properties are rewritten to their local forms, as in the stack's
Outputs: custom resources typically hand them to browsers (a site's config.js).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import TYPE_CHECKING, Any, Callable

from unkai.http import BodyTooLarge, Request, Response
from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext

if TYPE_CHECKING:
    from unkai.cloud import Cloud

TIMEOUT = 300.0  # seconds to wait for an answer (CloudFormation waits an hour)


def is_custom(resource_type: str) -> bool:
    return resource_type == "AWS::CloudFormation::CustomResource" or resource_type.startswith("Custom::")


class CustomResourceFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CustomResources:
    def __init__(self, cloud: "Cloud", rewrite: Callable[[str], str]) -> None:
        self.cloud = cloud
        self.rewrite = rewrite
        self.waiting: dict[str, asyncio.Future] = {}
        routes = cloud.gateway.internal
        if not getattr(routes, "_custom_resources", None):
            routes.route("PUT", r"/_unkai/cloudformation/responses/(?P<id>[A-Za-z0-9-]+)", self._answer,
                         access="public")
            routes._custom_resources = self

    async def _answer(self, request: Request, m: re.Match) -> Response:
        owner: CustomResources = self.cloud.gateway.internal._custom_resources
        fut = owner.waiting.get(m["id"])
        if fut is None or fut.done():
            return Response(403, [("content-type", "application/xml")],
                            b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
        try:
            body = await request.body(1024 * 1024)  # CloudFormation takes 4 KB; never hold a huge one
        except BodyTooLarge:
            return Response(400, [("content-type", "application/xml")],
                            b"<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the "
                            b"maximum allowed size</Message></Error>")
        try:
            answer = json.loads(body)
            if not isinstance(answer, dict):
                raise ValueError
        except ValueError:
            fut.set_exception(CustomResourceFailed("the custom resource's response is not a JSON object"))
        else:
            fut.set_result(answer)
        return Response(200, [("content-type", "application/xml")], b"")

    async def send(self, ctx: ResourceContext, request_type: str, resource_type: str, logical_id: str,
                   props: dict[str, Any], physical_id: str | None = None,
                   old_props: dict[str, Any] | None = None) -> Provisioned:
        """Send one request and wait for the resource's answer."""
        token = props.get("ServiceToken")
        if not isinstance(token, str) or not token.startswith("arn:"):
            raise CustomResourceFailed("ServiceToken must be the ARN of a Lambda function or an SNS topic")
        request_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": token,
            "ResponseURL": f"{self.cloud.config.endpoint}/_unkai/cloudformation/responses/{request_id}",
            "StackId": ctx.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
            "ResourceProperties": self._local(props),
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_props is not None:
            event["OldResourceProperties"] = self._local(old_props)
        owner: CustomResources = self.cloud.gateway.internal._custom_resources
        fut = asyncio.get_running_loop().create_future()
        owner.waiting[request_id] = fut
        try:
            failure = await self._deliver(ctx, token, json.dumps(event).encode())
            if failure and not fut.done():
                raise CustomResourceFailed(failure)
            try:
                answer = await asyncio.wait_for(fut, TIMEOUT)
            except asyncio.TimeoutError:
                raise CustomResourceFailed(f"no response to the ResponseURL within {TIMEOUT:.0f} seconds") from None
        finally:
            owner.waiting.pop(request_id, None)
        if answer.get("Status") != "SUCCESS":
            raise CustomResourceFailed(str(answer.get("Reason") or "the custom resource reported FAILED"))
        new_id = answer.get("PhysicalResourceId") or physical_id or request_id
        data = answer.get("Data") if isinstance(answer.get("Data"), dict) else {}
        return Provisioned(str(new_id), str(new_id), data)

    async def _deliver(self, ctx: ResourceContext, token: str, payload: bytes) -> str | None:
        """Hand the request over; a reason when it certainly will never be answered."""
        service = token.split(":")[2]
        try:
            if service == "lambda":
                result = await self.cloud.service("lambda").invoke(token, payload, region=ctx.region,
                                                                   account=ctx.account)
                if result.function_error:
                    try:
                        error = json.loads(result.payload)
                        return f"the function failed: {error.get('errorType')}: {error.get('errorMessage')}"
                    except ValueError:
                        return "the function failed"
                return None
            if service == "sns":
                self.cloud.call("sns", "Publish", {"TopicArn": token, "Message": payload.decode()},
                                region=token.split(":")[3])
                return None
        except ServiceError as exc:
            return f"{exc.code}: {exc.message}"
        return f"ServiceToken {token} is neither a Lambda function nor an SNS topic"

    def _local(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.rewrite(value)
        if isinstance(value, list):
            return [self._local(v) for v in value]
        if isinstance(value, dict):
            return {k: self._local(v) for k, v in value.items()}
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)  # CloudFormation sends every scalar property as a string
        return value
