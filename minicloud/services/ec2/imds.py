"""The instance metadata service: what an instance reads at http://169.254.169.254/ (IMDSv1 and v2).

The VPC data plane hands over one listening socket per VPC (bound to 169.254.169.254:80 inside the
VPC's router namespace); ``MetadataServer.serve`` answers HTTP/1.1 on it. The peer address of a
connection is the asking instance's private IP, so ``InstanceMetadata.lookup(vpc_id, peer)`` tells
which instance it is; nothing the instance sends can make it another one.

IMDSv2 as on EC2: ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds`` (1 to
21600, else 400) returns a session token, refused (403) when the request carries
``X-Forwarded-For``. A token is an HMAC over (VPC, private IP, expiry) with a key that lives only in
this process: valid for the instance that asked and until it expires, then 401. Requests without a
token are IMDSv1, allowed while the instance's ``HttpTokens`` is ``optional`` (EC2's default) and
refused with 401 when it is ``required``. ``HttpEndpoint=disabled`` answers 403 to everything.

The tree (``/latest/meta-data/...``, ``/latest/user-data``, ``/latest/dynamic/instance-identity/
document``) is built per request from ``InstanceInfo``; directories list their entries one per line
(sub-directories with a trailing ``/``), unknown paths answer EC2's 404 page. Every dated version
(``/2021-07-15/meta-data/...``) serves the same tree as ``latest``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import platform
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol, TypeAlias
from urllib.parse import unquote, urlsplit

log = logging.getLogger("minicloud.ec2.imds")

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "x-aws-ec2-metadata-token"
MAX_TOKEN_TTL = 21600
MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
IDLE_TIMEOUT = 10.0
VERSIONS = (
    "1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01", "2008-09-01",
    "2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12", "2014-02-25", "2014-11-05", "2015-10-20",
    "2016-04-19", "2016-06-30", "2016-09-02", "2018-03-28", "2018-08-17", "2018-09-24", "2019-10-01",
    "2020-10-27", "2021-01-03", "2021-03-23", "2021-07-15", "2022-09-24", "latest",
)


@dataclass(frozen=True)
class InstanceInfo:
    """What the metadata service tells an instance about itself (the EC2 provider fills it)."""

    instance_id: str
    ami_id: str
    instance_type: str
    private_ip: str
    public_ip: str | None
    availability_zone: str
    region: str
    hostname: str  # ip-10-0-1-5.ec2.internal
    mac: str
    user_data: bytes | None
    role_name: str | None  # the instance profile's role
    security_groups: tuple[str, ...]  # group names
    account_id: str
    # Optional details (served where EC2 serves them; empty ones are left out):
    vpc_id: str = ""
    vpc_cidr: str = ""
    subnet_id: str = ""
    subnet_cidr: str = ""
    security_group_ids: tuple[str, ...] = ()
    interface_id: str = ""  # eni-...
    reservation_id: str = ""
    launch_index: int = 0
    launch_time: datetime | None = None  # pendingTime of the identity document
    public_hostname: str = ""  # derived from public_ip when empty
    public_keys: tuple[tuple[str, str], ...] = ()  # (key pair name, OpenSSH public key)
    instance_profile_arn: str = ""
    instance_profile_id: str = ""
    http_tokens: str = "optional"  # "required": IMDSv1 answered 401
    http_endpoint: str = "enabled"  # "disabled": everything answered 403
    tags: tuple[tuple[str, str], ...] = ()  # served under tags/instance when instance_metadata_tags
    instance_metadata_tags: bool = False
    availability_zone_id: str = ""


@dataclass(frozen=True)
class RoleCredentials:
    """STS credentials of the instance profile's role (as AssumeRole returns them)."""

    access_key_id: str
    secret_access_key: str
    token: str
    expiration: datetime
    last_updated: datetime | None = None


class InstanceMetadata(Protocol):
    """The EC2 provider's side: who is asking, and the role's current credentials."""

    async def lookup(self, vpc_id: str, private_ip: str) -> InstanceInfo | None: ...

    async def credentials(self, info: InstanceInfo) -> RoleCredentials | None: ...


# -- HTTP ------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]  # lower-case names


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


class BadRequest(Exception):
    pass


def error_page(status: int) -> Response:
    """EC2's metadata service answers errors with a small XHTML page."""
    title = f"{status} - {HTTPStatus(status).phrase}"
    body = ('<?xml version="1.0" encoding="iso-8859-1"?>\n'
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
            '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
            f" <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n </body>\n</html>\n")
    return Response(status, body.encode(), "text/html")


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on a connection (its body read and dropped); None at a clean end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest("incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest("malformed header")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise BadRequest("chunked request bodies are not accepted")
    length = headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        raise BadRequest("invalid Content-Length")
    if int(length):
        await reader.readexactly(int(length))
    return Request(parts[0], parts[1], parts[2], headers)


def render(response: Response, head_only: bool, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}",
             f"Content-Type: {response.content_type}", "Accept-Ranges: none",
             f"Content-Length: {len(response.body)}", f"Date: {formatdate(usegmt=True)}", "Server: EC2ws",
             f"Connection: {'keep-alive' if keep_alive else 'close'}",
             *(f"{k}: {v}" for k, v in response.headers.items())]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


# -- session tokens --------------------------------------------------------------------------------
class TokenSigner:
    """IMDSv2 tokens: ``base64(vpc|ip|expiry).base64(hmac)``, checked without any stored state."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def issue(self, vpc_id: str, private_ip: str, ttl: int, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + ttl)
        payload = f"{vpc_id}|{private_ip}|{expires}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def valid(self, token: str, vpc_id: str, private_ip: str, now: float | None = None) -> bool:
        encoded, _, signature = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            mac = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        except (ValueError, TypeError):
            return False
        if not hmac.compare_digest(mac, self._mac(payload)):
            return False
        vpc, ip, expires = payload.decode().split("|")
        current = now if now is not None else time.time()
        return vpc == vpc_id and ip == private_ip and current < int(expires)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_ttl(value: str | None) -> int | None:
    """The requested TTL, or None when missing or out of 1..21600."""
    if value is None or not value.strip().isdigit():
        return None
    ttl = int(value.strip())
    return ttl if 1 <= ttl <= MAX_TOKEN_TTL else None


# -- the metadata tree -----------------------------------------------------------------------------
Leaf: TypeAlias = str | bytes | Callable[[], Awaitable[str | None]]


@dataclass(slots=True)
class Directory:
    children: dict[str, Node]
    labels: dict[str, str] = field(default_factory=dict)  # listing text of a child ("0=key-name")

    def listing(self) -> str:
        names = []
        for name, child in sorted(self.children.items()):
            label = self.labels.get(name, name)
            names.append(label + "/" if isinstance(child, Directory) and name not in self.labels else label)
        return "\n".join(names)


Node: TypeAlias = Directory | Leaf


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(doc: dict[str, object]) -> str:
    return json.dumps(doc, indent=2, separators=(",", " : "))


def public_hostname(info: InstanceInfo) -> str:
    if info.public_hostname or not info.public_ip:
        return info.public_hostname
    dashed = info.public_ip.replace(".", "-")
    zone = "compute-1.amazonaws.com" if info.region == "us-east-1" else f"{info.region}.compute.amazonaws.com"
    return f"ec2-{dashed}.{zone}"


def _architecture() -> str:
    machine = platform.machine()
    return {"aarch64": "arm64", "amd64": "x86_64"}.get(machine, machine)


def identity_document(info: InstanceInfo) -> str:
    pending = _timestamp(info.launch_time) if info.launch_time else None
    return _json({
        "accountId": info.account_id, "architecture": _architecture(), "availabilityZone": info.availability_zone,
        "billingProducts": None, "devpayProductCodes": None, "marketplaceProductCodes": None,
        "imageId": info.ami_id, "instanceId": info.instance_id, "instanceType": info.instance_type,
        "kernelId": None, "pendingTime": pending, "privateIp": info.private_ip, "ramdiskId": None,
        "region": info.region, "version": "2017-09-30"})


def _mask(cidr: str) -> str:
    try:
        return str(ipaddress.ip_network(cidr, strict=False).netmask)
    except ValueError:
        return ""


def _interface(info: InstanceInfo) -> Directory:
    entries: dict[str, Node] = {
        "device-number": "0", "local-hostname": info.hostname, "local-ipv4s": info.private_ip, "mac": info.mac,
        "owner-id": info.account_id, "interface-id": info.interface_id,
        "security-groups": "\n".join(info.security_groups), "security-group-ids": "\n".join(info.security_group_ids),
        "subnet-id": info.subnet_id, "subnet-ipv4-cidr-block": info.subnet_cidr, "vpc-id": info.vpc_id,
        "vpc-ipv4-cidr-block": info.vpc_cidr, "vpc-ipv4-cidr-blocks": info.vpc_cidr,
    }
    if info.public_ip:
        entries["public-ipv4s"] = info.public_ip
        entries["public-hostname"] = public_hostname(info)
    return Directory({k: v for k, v in entries.items() if v != ""})


def _iam(info: InstanceInfo, source: InstanceMetadata, role: str) -> Directory:
    async def role_credentials() -> str | None:
        credentials = await source.credentials(info)
        if credentials is None:
            return None
        return _json({
            "Code": "Success", "LastUpdated": _timestamp(credentials.last_updated or datetime.now(UTC)),
            "Type": "AWS-HMAC", "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key, "Token": credentials.token,
            "Expiration": _timestamp(credentials.expiration)})

    iam_info = _json({"Code": "Success", "LastUpdated": _timestamp(datetime.now(UTC)),
                      "InstanceProfileArn": info.instance_profile_arn, "InstanceProfileId": info.instance_profile_id})
    return Directory({"info": iam_info, "security-credentials": Directory({role: role_credentials})})


def meta_data(info: InstanceInfo, source: InstanceMetadata) -> Directory:
    tree: dict[str, Node] = {
        "ami-id": info.ami_id, "ami-launch-index": str(info.launch_index), "ami-manifest-path": "(unknown)",
        "block-device-mapping": Directory({"ami": "/dev/xvda", "root": "/dev/xvda"}),
        "hostname": info.hostname, "instance-action": "none", "instance-id": info.instance_id,
        "instance-life-cycle": "on-demand", "instance-type": info.instance_type, "local-hostname": info.hostname,
        "local-ipv4": info.private_ip, "mac": info.mac,
        "network": Directory({"interfaces": Directory({"macs": Directory({info.mac: _interface(info)})})}),
        "placement": Directory({"availability-zone": info.availability_zone, "region": info.region}),
        "profile": "default-hvm", "reservation-id": info.reservation_id,
        "security-groups": "\n".join(info.security_groups),
        "services": Directory({"domain": "amazonaws.com", "partition": "aws"}),
    }
    if info.availability_zone_id:
        placement = tree["placement"]
        assert isinstance(placement, Directory)
        placement.children["availability-zone-id"] = info.availability_zone_id
    if info.public_ip:
        tree["public-ipv4"] = info.public_ip
        tree["public-hostname"] = public_hostname(info)
    if info.public_keys:
        keys: dict[str, Node] = {str(i): Directory({"openssh-key": key + "\n"})
                                 for i, (_name, key) in enumerate(info.public_keys)}
        labels = {str(i): f"{i}={name}" for i, (name, _key) in enumerate(info.public_keys)}
        tree["public-keys"] = Directory(keys, labels)
    if info.role_name:
        tree["iam"] = _iam(info, source, info.role_name)
    if info.instance_metadata_tags:
        tree["tags"] = Directory({"instance": Directory(dict(info.tags))})
    return Directory({k: v for k, v in tree.items() if v != ""})


def version_tree(info: InstanceInfo, source: InstanceMetadata) -> Directory:
    identity = Directory({"document": identity_document(info)})
    tree: dict[str, Node] = {"meta-data": meta_data(info, source),
                             "dynamic": Directory({"instance-identity": identity})}
    if info.user_data is not None:
        tree["user-data"] = info.user_data
    return Directory(tree, {name: name for name in tree})  # listed without slashes, as EC2 does


async def resolve(info: InstanceInfo, source: InstanceMetadata, path: str) -> Response:
    """The answer for a GET of ``path`` (already decoded, without the query)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return Response(200, "\n".join(VERSIONS).encode())
    if parts[0] not in VERSIONS:
        return error_page(404)
    node: Node = version_tree(info, source)
    for part in parts[1:]:
        if not isinstance(node, Directory) or part not in node.children:
            return error_page(404)
        node = node.children[part]
    if isinstance(node, Directory):
        return Response(200, node.listing().encode())
    if isinstance(node, bytes):
        return Response(200, node, "application/octet-stream")
    if isinstance(node, str):
        return Response(200, node.encode())
    value = await node()
    return error_page(404) if value is None else Response(200, value.encode())


# -- the server ------------------------------------------------------------------------------------
class MetadataServer:
    """Serves every VPC's metadata socket; ``serve`` starts answering and returns."""

    def __init__(self, source: InstanceMetadata) -> None:
        self.source = source
        self.tokens = TokenSigner()
        self._servers: dict[str, asyncio.Server] = {}
        self._connections: set[asyncio.Task[None]] = set()

    async def serve(self, vpc_id: str, sock: socket.socket) -> None:
        """Answer on ``sock`` (listening) for ``vpc_id``; a VPC served already gets the new socket."""
        await self.stop_serving(vpc_id)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._connection(vpc_id, reader, writer)

        sock.setblocking(False)
        self._servers[vpc_id] = await asyncio.start_server(handle, sock=sock, limit=MAX_HEAD)

    async def stop_serving(self, vpc_id: str) -> None:
        """Stop listening for one VPC (its socket is closed)."""
        server = self._servers.pop(vpc_id, None)
        if server is not None:
            server.close()

    async def close(self) -> None:
        for vpc_id in list(self._servers):
            await self.stop_serving(vpc_id)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def _connection(self, vpc_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            peer = writer.get_extra_info("peername")
            await self._requests(vpc_id, str(peer[0]) if peer else "", reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _requests(self, vpc_id: str, peer: str, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await asyncio.wait_for(read_request(reader), IDLE_TIMEOUT)
            except BadRequest:
                writer.write(render(error_page(400), False, False))
                await writer.drain()
                return
            if request is None:
                return
            keep_alive = _keep_alive(request)
            try:
                response = await self.respond(vpc_id, peer, request)
            except Exception:
                log.exception("metadata request %s %s from %s failed", request.method, request.path, peer)
                response = error_page(500)
            writer.write(render(response, request.method == "HEAD", keep_alive))
            await writer.drain()
            if not keep_alive:
                return

    async def respond(self, vpc_id: str, peer: str, request: Request) -> Response:
        path = unquote(urlsplit(request.path).path)
        info = await self.source.lookup(vpc_id, peer)
        if info is None:
            return error_page(404)
        if info.http_endpoint != "enabled":
            return error_page(403)
        if path.rstrip("/") == TOKEN_PATH:
            return self._token(vpc_id, peer, request)
        if request.method not in ("GET", "HEAD"):
            return _not_allowed("GET, HEAD")
        token = request.headers.get(TOKEN_HEADER)
        if token is not None and not self.tokens.valid(token, vpc_id, peer):
            return error_page(401)
        if token is None and info.http_tokens == "required":
            return error_page(401)
        return await resolve(info, self.source, path)

    def _token(self, vpc_id: str, peer: str, request: Request) -> Response:
        if request.method != "PUT":
            return _not_allowed("PUT")
        if "x-forwarded-for" in request.headers:
            return error_page(403)
        ttl = token_ttl(request.headers.get(TTL_HEADER))
        if ttl is None:
            return error_page(400)
        token = self.tokens.issue(vpc_id, peer, ttl)
        return Response(200, token.encode(), headers={"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": str(ttl)})


def _not_allowed(allow: str) -> Response:
    response = error_page(405)
    response.headers["Allow"] = allow
    return response


def _keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"
