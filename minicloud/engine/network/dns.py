"""The name server of bridge networks: a UDP responder on each network's gateway address, inside
the engine's namespace. It answers A queries for the containers (names, aliases, short ids) of
the networks that the asking container shares with them, from the engine's live state, so a
container that joins later is found at once. Nothing is forwarded anywhere: an unknown name is
NXDOMAIN at once (there is no way out of the machine to ask).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

log = logging.getLogger("minicloud.engine.network")

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
TTL = 600

# (name, asking address) -> addresses of that name, [] when the name exists without an A record,
# None when it is unknown
Lookup = Callable[[str, str], "list[str] | None"]


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    qtype: int
    qclass: int
    end: int  # offset just after the question


class MalformedQuery(ValueError):
    pass


def parse_question(message: bytes) -> Question:
    if len(message) < 12:
        raise MalformedQuery("short header")
    if struct.unpack("!H", message[4:6])[0] != 1:
        raise MalformedQuery("exactly one question expected")
    labels: list[str] = []
    offset = 12
    while True:
        if offset >= len(message):
            raise MalformedQuery("name runs past the message")
        length = message[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0:
            raise MalformedQuery("compressed names are not expected in a question")
        labels.append(message[offset:offset + length].decode("ascii", "replace"))
        offset += length
    if offset + 4 > len(message):
        raise MalformedQuery("question ends early")
    qtype, qclass = struct.unpack("!HH", message[offset:offset + 4])
    return Question(".".join(labels).lower(), qtype, qclass, offset + 4)


def _header(query: bytes, rcode: int, answers: int, with_question: bool = True) -> bytes:
    flags_in = struct.unpack("!H", query[2:4])[0]
    opcode = flags_in & 0x7800
    rd = flags_in & 0x0100
    flags = 0x8000 | opcode | 0x0400 | rd | 0x0080 | rcode  # QR, AA, RD as asked, RA
    return query[:2] + struct.pack("!HHHHH", flags, 1 if with_question else 0, answers, 0, 0)


def answer(query: bytes, lookup: Lookup, client: str) -> bytes | None:
    """The response to ``query`` (None when it cannot even be answered with an error)."""
    if len(query) < 12:
        return None
    try:
        question = parse_question(query)
    except MalformedQuery:
        return _header(query, RCODE_FORMERR, 0, with_question=False)
    if struct.unpack("!H", query[2:4])[0] & 0x7800:  # not a standard query
        return _header(query, RCODE_NOTIMP, 0) + query[12:question.end]
    addresses = lookup(question.name, client) if question.qclass == CLASS_IN else None
    if addresses is None:
        return _header(query, RCODE_NXDOMAIN, 0) + query[12:question.end]
    records = b""
    count = 0
    if question.qtype == TYPE_A:
        for address in addresses:
            records += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + \
                ipaddress.IPv4Address(address).packed
            count += 1
    return _header(query, 0, count) + query[12:question.end] + records


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        try:
            response = answer(data, self.lookup, str(addr[0]))
        except Exception:
            log.exception("DNS query failed")
            return
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)


class Responder:
    """One UDP socket per gateway address, made by ``make_socket`` (in the engine's namespace)."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self._transports: dict[str, asyncio.DatagramTransport] = {}

    async def listen(self, address: str, sock: socket.socket) -> None:
        self.close(address)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self.lookup), sock=sock)
        self._transports[address] = transport

    def close(self, address: str) -> None:
        transport = self._transports.pop(address, None)
        if transport is not None:
            transport.close()

    def close_all(self) -> None:
        for address in list(self._transports):
            self.close(address)


def udp_socket(address: str, port: int = 53) -> socket.socket:
    """Blocking; call it in the namespace's thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.setblocking(False)
    return sock
