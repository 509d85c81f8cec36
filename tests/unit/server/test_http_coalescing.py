"""Small writes of one event-loop turn leave together; order and content never change."""

from __future__ import annotations

import asyncio
import socket

from minicloud.server.http import CoalescingTransport


def test_writes_keep_their_order_and_close_sends_everything() -> None:
    async def scenario() -> bytes:
        ours, theirs = socket.socketpair()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        coalescing = CoalescingTransport(transport, loop)
        coalescing.write(b"head ")
        coalescing.write(bytearray(b"body "))
        assert coalescing.get_write_buffer_size() == 10  # still ours, in one piece
        await asyncio.sleep(0)  # the end of the turn sends it
        await asyncio.sleep(0)
        assert coalescing.get_write_buffer_size() == 0
        coalescing.write(b"x")
        coalescing.write(b"L" * 20000)  # large: what is pending goes first, then this
        coalescing.write(memoryview(b"M" * 20000))  # large with nothing pending: straight through
        coalescing.write(b" tail")
        coalescing.close()  # sends " tail" before closing
        theirs.setblocking(False)
        received = b""
        while True:
            try:
                chunk = await loop.sock_recv(theirs, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                break
            received += chunk
        theirs.close()
        return received

    assert asyncio.run(scenario()) == b"head body x" + b"L" * 20000 + b"M" * 20000 + b" tail"
