"""The VPC data plane: real Linux networking for VPCs, in network namespaces of its own. No AWS
API and no database here: the EC2 controller tells it what should exist.

Topology (everything below is created by the data plane and removed by ``stop``)::

     host namespace                 router namespace of VPC A           instance namespaces
     --------------                 -------------------------           -------------------
     vx<tag><hash>  <== veth ==>    uplink  198.19.0.2/32
     198.19.0.1/32                  lo: 169.254.169.254, 10.0.1.1,      i-1: eth0 10.0.1.10/24
     route_localnet=1                   10.0.2.1 (subnet gateways)           default via 10.0.1.1
     /32 routes: transit -> uplink  p<hash(i-1)> <== veth ==>  ......  eth0 (the port's MAC)
     table inet minicloud_vpc_<tag> p<hash(i-2)> <== veth ==>  ......  i-2: eth0 10.0.2.20/24
                                    table inet minicloud_vpc

- One router namespace per VPC (VPCs share nothing: no route, no interface between two routers,
  so VPCs with the same CIDR coexist and never reach each other). IP forwarding is on there only.
- One namespace per instance (the container joins it: ``ensure_port`` returns its path), with one
  veth to its router. The instance sees its subnet (``10.0.1.10/24``) and a gateway ``x.x.x.1``;
  the router answers ARP for every address it routes (proxy ARP) and routes each instance by a
  /32 over its veth, so every packet between two instances, even in one subnet, is forwarded by
  the router, where nftables enforces security groups, statefully (``rules``).
- The router's loopback holds the subnets' gateways and 169.254.169.254, where the metadata
  service listens (``metadata_socket``): the peer of a connection is the instance's private IP.
- Public IPs are host loopback addresses (``127.100.0.0/16`` by default), never configured
  anywhere: the host's own table (``hosttable``) translates a connection to one into a transit
  address (``198.18.0.0/16``) routed into the VPC's uplink, which the router translates into the
  private IP. The instance's ingress rules then decide, with the host seen as ``198.19.0.1``.
- On the host: only our veths (``vx<tag>...``), their addresses and /32 routes, sysctls of those
  veths, and our table ``inet minicloud_vpc_<tag>`` (``<tag>`` names the state directory, so two
  minicloud processes never clash), plus lock files under /run/minicloud (``claims``: a public
  IP is mapped by one process only; a dead data plane's leftovers are swept by the next start).
  The host's other configuration and rules are never touched.
- Speed: a port is built without starting a process (a thread creates the namespace, rtnetlink
  does the rest: ``rtnl``, ``kernel``) and rulesets load in-process through libnftables
  (``nftlib``): a port with its rules in about 10-20 ms, a rule change in about 1-2 ms.
"""

from minicloud.vpcnet.model import Conflict, InvalidInput, NotFound, Port, Rule, SecurityGroup, VpcNetError
from minicloud.vpcnet.plane import VpcDataPlane

__all__ = ["Conflict", "InvalidInput", "NotFound", "Port", "Rule", "SecurityGroup", "VpcDataPlane", "VpcNetError"]
