"""The AWS edge: authenticate, route to a service, parse, call the provider, serialize.

Every error leaves through ``_render_error`` in the protocol of the service that was addressed,
so a provider only ever raises ``ServiceError`` subclasses.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.model import OperationModel, ServiceModel

from minicloud.aws import sigv4
from minicloud.aws.context import RequestContext
from minicloud.aws.errors import (
    ClientError,
    InternalFailure,
    MissingAuthenticationToken,
    NotImplementedOperation,
    RequestEntityTooLarge,
    ServiceError,
    SignatureDoesNotMatch,
)
from minicloud.aws.forms import parse_form
from minicloud.aws.payload import RequestPayload
from minicloud.aws.protocol.models import ServiceInfo, load_service_model, service_info
from minicloud.aws.protocol.parsers import RequestParser, create_parser, note_request_protocol
from minicloud.aws.protocol.rest_parsers import RestParser
from minicloud.aws.protocol.serializers import ResponseSerializer, create_serializer
from minicloud.aws.protocol.validate import validate
from minicloud.aws.provider import Handler, Provider
from minicloud.aws.request import AwsRequest, AwsResponse, ClientDisconnected
from minicloud.aws.request_ids import new_request_id
from minicloud.iam.authorizer import Authorizer
from minicloud.iam.credentials import CredentialStore
from minicloud.iam.identity import ANONYMOUS, Credential
from minicloud.topology import Topology

log = logging.getLogger("minicloud.aws")


class IncompleteBody(ClientError):
    """The body ended (the client went away) before Content-Length bytes arrived."""

    code = "IncompleteBody"


class ServiceEndpoint:
    """One service as the dispatcher serves it. Routing needs only the model's metadata
    (``info``); the model itself, its parser, serializer and handlers are built at the service's
    first request (a model is megabytes in memory: EC2's ~18 MiB, RDS's ~6 MiB; tens of ms to load)."""

    __slots__ = ("_built", "_lock", "info", "provider")

    def __init__(self, provider: Provider, info: ServiceInfo) -> None:
        self.provider = provider
        self.info = info
        self._built: _BuiltEndpoint | None = None
        self._lock = threading.Lock()

    @classmethod
    def build(cls, provider: Provider) -> ServiceEndpoint:
        return cls(provider, service_info(provider.service_name))

    @property
    def name(self) -> str:
        return self.provider.service_name

    @property
    def protocol(self) -> str:
        return self.info.protocol

    @property
    def model(self) -> ServiceModel:
        return self._loaded().model

    @property
    def parser(self) -> RequestParser:
        return self._loaded().parser

    @property
    def serializer(self) -> ResponseSerializer:
        return self._loaded().serializer

    @property
    def handlers(self) -> dict[str, Handler | None]:
        return self._loaded().handlers

    def _loaded(self) -> _BuiltEndpoint:
        built = self._built
        if built is None:
            with self._lock:
                built = self._built
                if built is None:
                    model = load_service_model(self.provider.service_name)
                    built = self._built = _BuiltEndpoint(
                        model=model, parser=create_parser(model), serializer=create_serializer(model),
                        handlers={name: self.provider.handler(name) for name in model.operation_names})
        return built


@dataclass(frozen=True, slots=True)
class _BuiltEndpoint:
    model: ServiceModel
    parser: RequestParser
    serializer: ResponseSerializer
    handlers: dict[str, Handler | None]


@dataclass(slots=True)
class _Exchange:
    """What is known of a request so far, for rendering its error in the right protocol."""

    request_id: str
    endpoint: ServiceEndpoint | None = None
    operation: OperationModel | None = None
    ctx: RequestContext | None = None  # once the operation and its caller are known
    params: dict[str, Any] | None = None


class AwsDispatcher:
    def __init__(self, providers: Iterable[Provider], credentials: CredentialStore,
                 authorizer: Authorizer, topology: Topology, *,
                 max_body_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_body_bytes = max_body_bytes
        self.endpoints = [ServiceEndpoint.build(p) for p in providers]
        self._by_signing_name: dict[str, list[ServiceEndpoint]] = {}
        for endpoint in self.endpoints:
            signing = endpoint.info.signing_name
            self._by_signing_name.setdefault(signing, []).append(endpoint)
        self._credentials = credentials
        self._authorizer = authorizer
        self._topology = topology
        # The services with endpoints of their own (S3's websites): each request's Host is shown to them first.
        self._hosting = [e for e in self.endpoints if type(e.provider).host_handler is not Provider.host_handler]

    # -- routing ---------------------------------------------------------------------------------
    def _route(self, signing_name: str | None, request: AwsRequest) -> ServiceEndpoint | None:
        if signing_name is None:  # unsigned: a JSON target or a query Action names its service
            unsigned = self._route_unsigned(request)
            if unsigned is not None:
                return unsigned
        candidates = self._by_signing_name.get(signing_name or "s3")
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0]
        target = request.headers.get("x-amz-target") or ""
        for endpoint in candidates:
            prefix = endpoint.info.target_prefix
            if prefix and target.startswith(prefix + "."):
                return endpoint
        version = _query_param(request, "Version")
        for endpoint in candidates:
            if version and endpoint.info.api_version == version:
                return endpoint
        return candidates[0]

    def _route_unsigned(self, request: AwsRequest) -> ServiceEndpoint | None:
        target = request.headers.get("x-amz-target")
        if target:
            for endpoint in self.endpoints:
                prefix = endpoint.info.target_prefix
                if prefix and target.startswith(prefix + "."):
                    return endpoint
        if not _may_be_anonymous(request):
            version = _query_param(request, "Version")
            for endpoint in self.endpoints:
                if version and endpoint.protocol in ("query", "ec2") and endpoint.info.api_version == version:
                    return endpoint
        return None

    def _fallback_endpoint(self) -> ServiceEndpoint | None:
        for name in ("sts", "iam"):
            for endpoint in self.endpoints:
                if endpoint.name == name:
                    return endpoint
        return self.endpoints[0] if self.endpoints else None

    # -- the request pipeline ------------------------------------------------------------------------
    async def handle(self, request: AwsRequest) -> AwsResponse:
        """Answer one request; every failure leaves as the addressed service's own error."""
        for hosting in self._hosting:  # (never signed: answered before any signature is read)
            host_handler = hosting.provider.host_handler(request)
            if host_handler is not None:
                return await host_handler(request, functools.partial(self._call_anonymously, hosting))
        exchange = _Exchange(new_request_id())
        error: ServiceError | None = None
        try:
            response = await self._serve(request, exchange)
        except ClientDisconnected:
            error = IncompleteBody(
                "You did not provide the number of bytes specified by the Content-Length HTTP header")
        except ServiceError as service_error:
            error = service_error
        except sigv4.AuthFailure as failure:
            if exchange.endpoint is None and failure.details and failure.details.get("service"):
                exchange.endpoint = self._route(str(failure.details["service"]), request)
            endpoint = exchange.endpoint
            error = sigv4.auth_error(failure, endpoint.protocol if endpoint else "query",
                                     endpoint.name if endpoint else "sts")
        except Exception:
            log.exception("unhandled error in %s", exchange.operation.name if exchange.operation else request.path)
            error = InternalFailure("We encountered an internal error. Please try again.")
        if error is not None:
            response = self._render_error(error, exchange.endpoint, exchange.operation, exchange.request_id)
        if exchange.ctx is not None and exchange.endpoint is not None and exchange.endpoint.provider.observes_answers:
            self._show_answer(exchange.endpoint.provider, exchange, response, error)
        return response

    @staticmethod
    def _show_answer(provider: Provider, exchange: _Exchange, response: AwsResponse,
                     error: ServiceError | None) -> None:
        assert exchange.ctx is not None and exchange.params is not None
        try:
            provider.answered(exchange.ctx, exchange.params, response, error)
        except Exception:  # what watches answers never changes one
            log.exception("%s could not take note of an answer", provider.service_name)

    async def _serve(self, request: AwsRequest, exchange: _Exchange) -> AwsResponse:
        # A CORS preflight is never authenticated (a presigned URL's signature is for its own method).
        auth = None if request.method == "OPTIONS" else sigv4.parse_auth(request)
        endpoint = exchange.endpoint = await self._address(request, auth)
        streaming = await self._prepare_body(request, endpoint)
        region = (auth.region if auth else "") or self._topology.default_region  # SigV2 has no scope
        if not endpoint.provider.global_service and not self._topology.has_region(region):
            raise SignatureDoesNotMatch("Credential should be scoped to a valid region. ")
        now = datetime.now(UTC)
        credential = None
        if auth is not None:
            credential = await self._authenticate(request, auth, endpoint, now, check_payload=streaming is None)
        operation, params = endpoint.parser.parse(request)
        exchange.operation = operation
        ctx = RequestContext(
            request_id=exchange.request_id, service=endpoint.name, operation=operation.name, region=region,
            principal=credential.principal if credential else ANONYMOUS, request=request, now=now,
            authorizer=self._authorizer, access_denied=endpoint.provider.access_denied,
        )
        ctx.extra["credential"] = credential
        ctx.extra["auth"] = auth
        exchange.ctx, exchange.params = ctx, params
        validate(operation, params, endpoint.protocol)
        if streaming is not None:
            params[streaming] = RequestPayload.for_request(
                request, auth, credential.secret_access_key if credential else None)
        handler = endpoint.handlers.get(operation.name)
        if handler is None:
            raise NotImplementedOperation(
                f"The operation {operation.name} of {endpoint.info.service_id} is not implemented by minicloud.")
        result = await handler(ctx, params)
        if not ctx.authorized:
            raise InternalFailure(f"{operation.name} returned without an authorization check")
        if credential is not None:
            self._credentials.note_used(credential.access_key_id, endpoint.name, region, now)
        return endpoint.serializer.serialize_result(operation, result, exchange.request_id)

    async def _call_anonymously(self, endpoint: ServiceEndpoint, request: AwsRequest, request_id: str,
                                region: str) -> AwsResponse:
        """``AnonymousCall`` for ``endpoint``'s own endpoints (``Provider.host_handler``)."""
        note_request_protocol(endpoint.model, request)
        operation, params = endpoint.parser.parse(request)
        validate(operation, params, endpoint.protocol)
        handler = endpoint.handlers.get(operation.name)
        if handler is None:
            raise NotImplementedOperation(
                f"The operation {operation.name} of {endpoint.info.service_id} is not implemented by minicloud.")
        ctx = RequestContext(
            request_id=request_id, service=endpoint.name, operation=operation.name, region=region,
            principal=ANONYMOUS, request=request, now=datetime.now(UTC), authorizer=self._authorizer,
            access_denied=endpoint.provider.access_denied,
        )
        ctx.extra["credential"] = None
        ctx.extra["auth"] = None
        result = await handler(ctx, params)
        if not ctx.authorized:
            raise InternalFailure(f"{operation.name} returned without an authorization check")
        return endpoint.serializer.serialize_result(operation, result, request_id)

    async def _address(self, request: AwsRequest, auth: sigv4.SigV4Auth | None) -> ServiceEndpoint:
        """The service a request is for, or the error that says it cannot be served."""
        endpoint = self._route(auth.service if auth else None, request)
        if endpoint is None:
            await self._read_stream(request)
            if auth is None:
                raise MissingAuthenticationToken("Missing Authentication Token")
            raise SignatureDoesNotMatch(f"Credential should be scoped to correct service: '{auth.service}'. ")
        note_request_protocol(endpoint.model, request)  # errors from here on speak its protocol
        endpoint.provider.readdress(request)
        if auth is None and not (endpoint.provider.anonymous_access and _may_be_anonymous(request)):
            # Anonymous access exists only where AWS allows it (S3); the services that allow it
            # authorise the anonymous principal themselves (bucket policies).
            await self._read_stream(request)
            raise MissingAuthenticationToken("Request is missing Authentication Token")
        return endpoint

    async def _prepare_body(self, request: AwsRequest, endpoint: ServiceEndpoint) -> str | None:
        """Route first: a body left unread by the server stays a stream for an operation whose
        payload is a streaming blob (the member's name is returned); any other reads it here."""
        parser = endpoint.parser
        streaming = parser.streaming_payload(request) if isinstance(parser, RestParser) else None
        if (streaming is not None and (request.headers.get("authorization") or "").startswith("AWS4-HMAC-SHA256")
                and not request.headers.get("x-amz-content-sha256")):
            # A SigV4 header signature without a declared payload hash covers the body: read it (Lambda
            # Invoke). Presigned, SigV2 and anonymous requests (S3 uploads, browser POSTs) still stream.
            streaming = None
        if streaming is None and request.stream is not None:
            await self._read_stream(request)
        return streaming

    async def _read_stream(self, request: AwsRequest) -> None:
        if request.stream is None:
            return
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream:
            size += len(chunk)
            if size > self._max_body_bytes:
                raise RequestEntityTooLarge("Request entity too large")
            chunks.append(chunk)
        request.body, request.stream = b"".join(chunks), None

    async def _authenticate(self, request: AwsRequest, auth: sigv4.SigV4Auth, endpoint: ServiceEndpoint,
                            now: datetime, *, check_payload: bool = True) -> Credential:
        credential = await self._credentials.resolve(auth.access_key_id)
        if credential is None or not credential.active:
            raise sigv4.unknown_key(auth)
        sigv4.verify(request, auth, credential.secret_access_key, now, check_payload=check_payload)
        if credential.session_token is not None:
            if auth.session_token != credential.session_token:
                raise sigv4.invalid_token(auth)
            if credential.expires_at is not None and credential.expires_at <= now:
                raise sigv4.expired_token(auth)
            # Credentials from GetSessionToken without MFA cannot call IAM (as on AWS).
            if credential.extra.get("issued_by") == "GetSessionToken" and endpoint.name == "iam":
                raise sigv4.unknown_key(auth)
        return credential

    def render_error(self, error: ServiceError, request: AwsRequest) -> AwsResponse:
        """Render an error found before dispatch (e.g. an oversized body) for the addressed service."""
        try:
            auth = sigv4.parse_auth(request)
        except sigv4.AuthFailure:
            auth = None
        endpoint = self._route(auth.service if auth else None, request)
        return self._render_error(error, endpoint, None, new_request_id())

    def _render_error(self, error: ServiceError, endpoint: ServiceEndpoint | None,
                      operation: OperationModel | None, request_id: str) -> AwsResponse:
        endpoint = endpoint or self._fallback_endpoint()
        if endpoint is None:
            return AwsResponse(500, [("content-type", "text/plain")], b"no AWS service is configured\n")
        return endpoint.serializer.serialize_error(error, operation, request_id)


def _may_be_anonymous(request: AwsRequest) -> bool:
    """An unsigned request may be an anonymous S3 request unless it is plainly addressed to a
    query or JSON protocol service (a form-encoded Action, an X-Amz-Target)."""
    if "x-amz-target" in request.headers or "Action=" in request.query:
        return False
    content_type = request.headers.get("content-type") or ""
    return not (request.method == "POST" and content_type.startswith("application/x-www-form-urlencoded"))


def _query_param(request: AwsRequest, name: str) -> str | None:
    form = (request.headers.get("content-type") or "").startswith("application/x-www-form-urlencoded")
    for source in (request.query, request.body.decode("latin-1") if form else ""):
        try:
            pairs = parse_form(source)
        except ValueError:  # not UTF-8 once decoded: no such parameter can be read from it
            continue
        for key, value in pairs:
            if key == name:
                return value
    return None
