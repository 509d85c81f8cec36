"""What the data plane asks of the kernel besides ``ip`` and nftables: sysctls of its own
namespaces and interfaces (never the host's), and listening sockets inside a router."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from minicloud.engine.network import netns

# sysctls of a router namespace (never of the host): it forwards between its own interfaces only,
# answers ARP for every address it routes (proxy ARP; without delay: each port's proxy_delay is 0),
# drops spoofed sources
ROUTER_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.default.rp_filter": "1",
    "net.ipv4.conf.all.arp_ignore": "0",
    "net.ipv4.conf.default.arp_ignore": "0",
    "net.ipv4.conf.default.proxy_arp": "1",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
# sysctls of an instance's namespace: no forwarding; its eth0 gets no IPv6 (lo keeps ::1)
INSTANCE_SYSCTLS = {"net.ipv4.ip_forward": "0", "net.ipv6.conf.default.disable_ipv6": "1"}


def host_link_sysctls(link: str) -> None:
    """Blocking. Sysctls of our own uplink's host end: 127/8 sources may leave through it (the
    host's connections to public IPs) and it carries no IPv6."""
    Path(f"/proc/sys/net/ipv4/conf/{link}/route_localnet").write_text("1")
    with contextlib.suppress(FileNotFoundError):
        Path(f"/proc/sys/net/ipv6/conf/{link}/disable_ipv6").write_text("1")


async def write_sysctls(path: Path, values: dict[str, str]) -> None:
    thread = netns.NamespaceThread(path)
    try:
        await thread.call(lambda: write_all(thread, values))
    finally:
        thread.close()


def write_all(thread: netns.NamespaceThread, values: dict[str, str]) -> None:
    """Blocking, in the namespace's thread, in order."""
    for name, value in values.items():
        thread.write_sysctl(name, value)


def listening_socket(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(512)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
