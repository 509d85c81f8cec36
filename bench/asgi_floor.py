"""The floor of minicloud's HTTP stack: uvicorn's server with minicloud's HTTP protocol (uvloop +
httptools, as ``minicloud up`` runs it; ``--protocol uvicorn`` for uvicorn's own) serving a trivial
ASGI app that reads the request body and answers a fixed STS-sized 200.

Whatever minicloud does per request comes on top of this; the gap between the two is minicloud's own work.

    python -m bench.asgi_floor --port P [--protocol minicloud|uvicorn]
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bench.trivial_server import RESPONSE

_BODY = RESPONSE.split(b"\r\n\r\n", 1)[1]
_HEADERS = [(b"content-type", b"text/xml"), (b"content-length", str(len(_BODY)).encode()),
            (b"x-amzn-requestid", b"00000000-0000-0000-0000-000000000000")]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body"))
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=("minicloud", "uvicorn"), default="minicloud",
                        help="minicloud's HTTP protocol (as `minicloud up` runs) or uvicorn's httptools one")
    args = parser.parse_args()
    http: Any = "httptools"
    if args.protocol == "minicloud":
        from minicloud.server.protocol import bounded_protocol

        http = bounded_protocol(64 * 1024)
    # The same server settings as ``minicloud up`` (minicloud/cli.py).
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http=http, lifespan="on",
                access_log=False, log_level="warning", server_header=False, date_header=True,
                timeout_keep_alive=30)


if __name__ == "__main__":
    main()
