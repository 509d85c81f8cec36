"""The HTTP/1.1 protocol minicloud serves with: uvicorn's httptools protocol, with the size of a
request's head (request line + headers) bounded *while it arrives*.

httptools keeps a header that has not ended yet in its own buffer, so a client sending an endless
header line would grow the server's memory without limit before any ASGI code runs. Here the bytes
received while a head is incomplete are counted, and past the limit the connection gets
``431 Request Header Fields Too Large`` and is closed.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# One read from the socket may carry the end of a head and the start of its body: count that slack.
_READ_SLACK = 256 * 1024


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes + _READ_SLACK:
                self._refuse()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what arrives next is the next request's head

    def _refuse(self) -> None:
        message = b"Request Header Fields Too Large\n"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\nconnection: close\r\n\r\n" + message)
        self.transport.close()


def bounded_protocol(max_head_bytes: int) -> type[BoundedHttpToolsProtocol]:
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"max_head_bytes": max_head_bytes})
