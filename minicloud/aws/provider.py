"""A provider implements one AWS service's operations as async methods.

    class IamProvider(Provider):
        service_name = "iam"
        async def list_users(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]: ...

Method names are the operation names in snake_case (botocore's ``xform_name``). An operation
without a method answers ``NotImplemented``. Every method must call ``ctx.authorize`` (or
``ctx.allow_unauthenticated``) before it returns: the dispatcher refuses results otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from minicloud.aws.errors import AccessDenied, ServiceError

if TYPE_CHECKING:
    from minicloud.aws.context import RequestContext
    from minicloud.aws.request import AwsRequest, AwsResponse

Handler = Callable[["RequestContext", dict[str, Any]], Awaitable[dict[str, Any]]]


class AnonymousCall(Protocol):
    """The operation an unsigned request addresses, called as the anonymous principal: parsed,
    validated, handled and serialized as any request to the service is; its error is raised, for
    the caller to answer in its own way."""

    async def __call__(self, request: AwsRequest, request_id: str, region: str) -> AwsResponse: ...


# A request to one of a service's own endpoints that are not AWS API endpoints (S3's website
# endpoints), answered whole: with the service's operations at hand (``AnonymousCall``).
HostHandler = Callable[["AwsRequest", AnonymousCall], Awaitable["AwsResponse"]]


class Provider:
    service_name: ClassVar[str]
    # Services that are not regional (IAM, STS's global endpoint, Organizations) accept any region.
    global_service: ClassVar[bool] = False
    access_denied: ClassVar[type[ServiceError]] = AccessDenied
    # Whether unsigned requests reach the provider (as the ANONYMOUS principal): S3 only.
    anonymous_access: ClassVar[bool] = False
    # Whether the dispatcher shows the provider each answer (``answered``): S3's server access logs.
    observes_answers: ClassVar[bool] = False

    def handler(self, operation_name: str) -> Handler | None:
        from botocore import xform_name

        method = getattr(self, xform_name(operation_name), None)
        return method if callable(method) else None

    def answered(self, ctx: RequestContext, params: dict[str, Any], response: AwsResponse,
                 error: ServiceError | None) -> None:
        """With ``observes_answers``: a request that reached its operation (parsed, its caller
        known) has been answered with ``response`` (``error`` when it failed), whose body is about
        to be sent. It must not block: the request's answer waits for it."""

    def readdress(self, request: AwsRequest) -> None:
        """Adjust a request addressed to this service before it is parsed (S3: virtual hosts)."""

    def host_handler(self, request: AwsRequest) -> HostHandler | None:
        """The handler of a request whose Host names one of this service's own endpoints (S3's
        website endpoints), which answers it before any signature is looked at; None for any other
        request. Asked of every request when a provider defines it: keep it cheap."""
        return None

    async def start(self) -> None:
        """Called once when the server starts (after migrations)."""

    async def stop(self) -> None:
        """Called once when the server stops."""

    def health(self) -> str:
        return "running"
