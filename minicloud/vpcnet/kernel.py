"""What the data plane asks of the kernel directly: sysctls of its own namespaces and interfaces
(never the host's), an instance's namespace and veth pair built by a thread without starting a
process (``rtnl``), routes of its own on the host, and listening sockets inside a router."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

from minicloud.engine.network import netns
from minicloud.netlink import namespaces, rtnl
from minicloud.vpcnet.addressing import INSTANCE_IFNAME, LINK_HOST, LINK_ROUTER, METADATA_ADDRESS, UPLINK

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


def build_instance_side(path: Path, router: Path, ifname: str, mac: str, address: str, prefixlen: int,
                        gateway: str) -> None:
    """Blocking, in a thread of its own that ends afterwards. Create the instance's namespace at
    ``path`` and its veth pair: ``eth0`` (the port's MAC and address, default route via the
    gateway) here, ``ifname`` in the router's namespace."""
    namespaces.unshare_to(path)
    for name, value in INSTANCE_SYSCTLS.items():
        Path("/proc/sys", name.replace(".", "/")).write_text(value)
    router_fd = os.open(router, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with rtnl.Rtnl() as nl:
            nl.set_up("lo")
            nl.add_veth(INSTANCE_IFNAME, ifname, router_fd, mac=mac)
            nl.add_address(INSTANCE_IFNAME, address, prefixlen, exist_ok=True)
            nl.set_up(INSTANCE_IFNAME)
            nl.route("0.0.0.0", 0, INSTANCE_IFNAME, gateway)
    finally:
        os.close(router_fd)


def build_uplink(link: str, router: Path) -> None:
    """Blocking, in the host's namespace. The VPC's uplink: ``link`` here (LINK_HOST, 127/8 sources
    may leave through it, no IPv6), its peer ``uplink`` in the router's namespace."""
    router_fd = os.open(router, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with rtnl.Rtnl() as nl:
            nl.delete_link(link)  # one left under this name
            nl.add_veth(link, UPLINK, router_fd)
            host_link_sysctls(link)
            nl.add_address(link, LINK_HOST, 32, exist_ok=True)
            nl.set_up(link)
    finally:
        os.close(router_fd)


def configure_router(thread: netns.NamespaceThread) -> None:
    """Blocking, in the router's thread: its sysctls, loopback (with the metadata address) and
    uplink (LINK_ROUTER, a route to LINK_HOST)."""
    write_all(thread, ROUTER_SYSCTLS)
    with rtnl.Rtnl() as nl:
        nl.set_up("lo")
        nl.add_address("lo", METADATA_ADDRESS, 32, exist_ok=True)
        nl.add_address(UPLINK, LINK_ROUTER, 32, exist_ok=True)
        nl.set_up(UPLINK)
        nl.route(LINK_HOST, 32, UPLINK)


def loopback_address(address: str, *, delete: bool = False) -> None:
    """Blocking, in a namespace's thread: add (or delete) ``address``/32 on its loopback."""
    with rtnl.Rtnl() as nl:
        if delete:
            nl.delete_address("lo", address, 32)
        else:
            nl.add_address("lo", address, 32, exist_ok=True)


def attach_router_side(ifname: str, address: str) -> None:
    """Blocking, in the router's thread. Bring the router's end up, answering ARP at once, with
    the instance's /32 route over it."""
    Path(f"/proc/sys/net/ipv4/neigh/{ifname}/proxy_delay").write_text("0")
    with rtnl.Rtnl() as nl:
        nl.set_up(ifname)
        nl.route(address, 32, ifname)


def delete_link(name: str) -> None:
    """Blocking, in the namespace's thread: delete an interface (a veth: both ends) if there."""
    with rtnl.Rtnl() as nl:
        nl.delete_link(name)


def route_transit(candidate: str, link: str) -> bool:
    """Blocking, in the host's namespace: route ``candidate``/32 to the router over ``link``;
    False when the host already routes it (another port's, maybe another process's)."""
    with rtnl.Rtnl() as nl:
        try:
            nl.route(candidate, 32, link, LINK_ROUTER, onlink=True)
        except FileExistsError:
            return False
    return True


def unroute_transit(transit: str, link: str) -> None:
    """Blocking, in the host's namespace: remove a transit route (gone already is fine)."""
    with rtnl.Rtnl() as nl:
        try:
            nl.route(transit, 32, link, LINK_ROUTER, onlink=True, delete=True)
        except OSError as exc:
            if exc.errno not in (errno.ESRCH, errno.ENODEV, errno.ENOENT):
                raise
