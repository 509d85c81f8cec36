"""The cheapest HTTP/1.1 keep-alive server we can write in Python: the load generator's ceiling.

It frames each request (headers, then Content-Length bytes) and answers a fixed 200 with a body the
size of an STS GetCallerIdentity response, doing no other work. What the load generator reaches
against it is a lower bound of what the generator itself can drive (the server shares the CPUs).

    python -m bench.trivial_server --port P
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any, cast

uvloop: Any
try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

_BODY = (
    b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
    b"  <GetCallerIdentityResult>\n    <Arn>arn:aws:iam::000000000000:root</Arn>\n"
    b"    <UserId>000000000000</UserId>\n    <Account>000000000000</Account>\n"
    b"  </GetCallerIdentityResult>\n  <ResponseMetadata>\n"
    b"    <RequestId>00000000-0000-0000-0000-000000000000</RequestId>\n  </ResponseMetadata>\n"
    b"</GetCallerIdentityResponse>\n"
)
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: " + str(len(_BODY)).encode()
            + b"\r\n\r\n" + _BODY)


class _Trivial(asyncio.Protocol):
    __slots__ = ("buf", "transport")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            at = buf.find(b"Content-Length:", 0, end)
            if at < 0:
                at = buf.lower().find(b"content-length:", 0, end)
            length = 0
            if at >= 0:
                eol = buf.find(b"\r\n", at)
                length = int(buf[at + 15:eol])
            total = end + 4 + length
            if len(buf) < total:
                break
            del buf[:total]
            out.append(RESPONSE)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Trivial, host, port, backlog=1024)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _resolve, stop)
    async with server:
        await stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if uvloop is not None:
        uvloop.run(serve(args.host, args.port))
    else:  # pragma: no cover
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
