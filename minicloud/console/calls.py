"""Calling a service operation for the signed-in principal, through the same providers as the APIs.

``ServiceCalls.call("s3", "ListBuckets", {})`` builds the ``RequestContext`` the AWS edge would
build for the same principal and region, validates the parameters against the operation's botocore
model (the edge's own validation) and calls the provider's operation method. Authorization, errors
and results are therefore those of the API: a denied call raises the service's AccessDenied error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.dispatch import AwsDispatcher, ServiceEndpoint
from minicloud.aws.errors import InternalFailure, NotImplementedOperation, ServiceError, error_code
from minicloud.aws.protocol.validate import validate
from minicloud.aws.request import AwsRequest, Headers
from minicloud.iam.authorizer import Authorizer
from minicloud.iam.identity import Principal
from minicloud.topology import Topology


@dataclass(frozen=True, slots=True)
class CallFailure:
    """A service error as the console shows it."""

    code: str
    message: str

    @classmethod
    def of(cls, error: ServiceError) -> CallFailure:
        return cls(error_code(error), error.message)

    @property
    def denied(self) -> bool:
        return self.code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


class ServiceCalls:
    """The operations of every service the server runs, as the given principal."""

    def __init__(self, dispatcher: AwsDispatcher, authorizer: Authorizer, topology: Topology) -> None:
        self._endpoints = {endpoint.name: endpoint for endpoint in dispatcher.endpoints}
        self.authorizer = authorizer
        self.topology = topology

    def has(self, service: str) -> bool:
        return service in self._endpoints

    @property
    def services(self) -> list[str]:
        return sorted(self._endpoints)

    def endpoint(self, service: str) -> ServiceEndpoint:
        return self._endpoints[service]

    def as_principal(self, principal: Principal, region: str, client_ip: str, secure: bool,
                     host: str | None = None) -> PrincipalCalls:
        return PrincipalCalls(self, principal, region, client_ip, secure, host)


class PrincipalCalls:
    def __init__(self, calls: ServiceCalls, principal: Principal, region: str, client_ip: str, secure: bool,
                 host: str | None = None) -> None:
        self._calls = calls
        self._host = host
        self.principal = principal
        self.region = region
        self._client_ip = client_ip
        self._secure = secure

    def has(self, service: str) -> bool:
        return self._calls.has(service)

    def context(self, service: str, operation: str, method: str = "POST") -> RequestContext:
        endpoint = self._calls.endpoint(service)
        headers = Headers([("user-agent", "minicloud-console")])
        if self._host:
            headers.add("host", self._host)  # services that print endpoints (ECR's repositoryUri) use it
        request = AwsRequest(method=method, path="/", headers=headers, client_ip=self._client_ip, secure=self._secure)
        return RequestContext(
            request_id=str(uuid.uuid4()), service=service, operation=operation, region=self.region,
            principal=self.principal, request=request, now=datetime.now(UTC), authorizer=self._calls.authorizer,
            access_denied=endpoint.provider.access_denied,
        )

    async def call(self, service: str, operation: str, params: dict[str, Any] | None = None, *,
                   method: str = "POST", payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """The operation's result; its service error is raised as the API would answer it.
        ``payload`` holds a streaming body member (S3 PutObject's Body), added after validation as
        the edge does."""
        if not self._calls.has(service):
            raise NotImplementedOperation(f"The service {service} is not run by this minicloud.")
        endpoint = self._calls.endpoint(service)
        params = dict(params or {})
        validate(endpoint.model.operation_model(operation), params, endpoint.protocol)
        if payload:
            params.update(payload)
        handler = endpoint.handlers.get(operation)
        if handler is None:
            raise NotImplementedOperation(
                f"The operation {operation} of {endpoint.info.service_id} is not implemented by minicloud.")
        ctx = self.context(service, operation, method)
        ctx.extra["credential"] = None
        ctx.extra["auth"] = None
        result = await handler(ctx, params)
        if not ctx.authorized:
            raise InternalFailure(f"{operation} returned without an authorization check")
        return result

    async def attempt(self, service: str, operation: str, params: dict[str, Any] | None = None,
                      ) -> tuple[dict[str, Any] | None, CallFailure | None]:
        """``call``, with a service error returned instead of raised."""
        try:
            return await self.call(service, operation, params), None
        except ServiceError as error:
            return None, CallFailure.of(error)
