"""Low-level Linux networking shared by the engine's bridge networks and the VPC data plane:
rtnetlink requests on a NETLINK_ROUTE socket (``rtnl``) and network namespaces entered or created
by the calling thread (``namespaces``). Imports nothing of minicloud; both users sit above it."""
