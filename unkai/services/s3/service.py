"""Amazon S3 over the store and files under the state directory.

The service class is assembled from one mixin per concern (buckets, objects,
versions, listing, multipart, notifications, CORS, website); each lives in its own
module. Metadata is in SQLite, bytes in files (``storage.py``)."""

from __future__ import annotations

from typing import Any

from unkai.http import Request, Response
from unkai.protocol import PROTOCOLS, ParamError, SerializationError, ServiceError, models
from unkai.services import RequestContext, Service
from unkai.services.s3 import addressing
from unkai.services.s3.buckets import BucketOps
from unkai.services.s3.configs import ConfigOps
from unkai.services.s3.cors import CorsOps
from unkai.services.s3.forms import FormOps
from unkai.services.s3.lifecycle import LifecycleOps
from unkai.services.s3.listing import ListingOps
from unkai.services.s3.locks import LockOps
from unkai.services.s3.multipart import MultipartOps
from unkai.services.s3.notifications import NotificationOps
from unkai.services.s3.objects import ObjectOps
from unkai.services.s3.resources import ResourceOps
from unkai.services.s3.sse import EncryptionOps
from unkai.services.s3.state import MIGRATIONS, S3Error, malformed_xml
from unkai.services.s3.storage import Blobs
from unkai.services.s3.versions import VersionOps
from unkai.services.s3.website import WebsiteOps


class S3(BucketOps, ObjectOps, VersionOps, ListingOps, MultipartOps, NotificationOps, CorsOps, WebsiteOps,
         FormOps, LifecycleOps, LockOps, ConfigOps, ResourceOps, EncryptionOps, Service):
    name = "s3"
    serves_routes = True  # CORS preflights, browser form POSTs, website hosts
    migrations = MIGRATIONS
    resource_types = ("AWS::S3::Bucket", "AWS::S3::BucketPolicy")

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers NoSuchBucket for a missing bucket first, as AWS does."""
        if isinstance(params.get("Bucket"), str):
            self._bucket(params["Bucket"])

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.blobs = Blobs(self.config.state_dir / "s3")

    @property
    def model(self) -> Any:
        """S3's model, loaded on first use (not at start: it is megabytes)."""
        return models.load_model("s3")

    async def start(self) -> None:
        self.start_website()
        self.start_cors()
        self.start_forms()
        self.start_lifecycle()

    def handler(self, operation: str) -> Any:
        return super().handler(operation) or self.configuration_handler(operation)

    def rewrite_request(self, request: Request) -> None:
        addressing.to_path_style(request)

    def serialization_error(self, error: SerializationError, protocol: str) -> ServiceError:
        return malformed_xml()

    def param_error(self, error: ParamError, protocol: str) -> ServiceError:
        if error.message.startswith("The request is missing the required"):  # an element of an XML body
            return malformed_xml()
        return S3Error("InvalidArgument", error.message)

    def _serialize(self, ctx: RequestContext, result: dict, status: int = 200) -> Response:
        """A response the protocol layer builds, with a status the model cannot express (206, 304)."""
        op = models.operations(self.model)[ctx.operation]
        response = PROTOCOLS["rest-xml"].serialize(op, result, ctx.request_id)
        response.status = status
        return response
