"""Networks: the engine's namespace, bridges, IPAM, veth pairs, nftables, DNS, published ports."""
