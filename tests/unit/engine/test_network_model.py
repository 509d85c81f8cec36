from __future__ import annotations

from pathlib import Path

import pytest

from minicloud.engine.containers.attachments import published, wanted_networks
from minicloud.engine.containers.model import Container
from minicloud.engine.errors import InvalidArgument
from minicloud.engine.network.model import Network, NetworkStore, network_mode, validate_name


def test_network_modes() -> None:
    assert network_mode({}) == ("bridge", "bridge")
    assert network_mode({"NetworkMode": "default"}) == ("bridge", "bridge")
    assert network_mode({"NetworkMode": "appnet"}) == ("bridge", "appnet")
    assert network_mode({"NetworkMode": "none"}) == ("none", "")
    assert network_mode({"NetworkMode": "host"}) == ("host", "")
    assert network_mode({"NetworkMode": "container:web"}) == ("container", "web")
    with pytest.raises(InvalidArgument):
        network_mode({"NetworkMode": "container:"})


def test_wanted_networks_put_the_mode_first() -> None:
    host = {"NetworkMode": "front"}
    config = {"EndpointsConfig": {"back": {"Aliases": ["b"]}, "front": {"Aliases": ["f"]}}}
    assert wanted_networks(host, config) == [("front", {"Aliases": ["f"]}), ("back", {"Aliases": ["b"]})]
    assert wanted_networks({}, {}) == [("bridge", {})]
    assert wanted_networks({"NetworkMode": "none"}, {"EndpointsConfig": {"none": {}}}) == []
    with pytest.raises(InvalidArgument):
        wanted_networks({"NetworkMode": "host"}, {"EndpointsConfig": {"front": {}}})


def test_publish_all_adds_exposed_ports() -> None:
    container = Container(id="c", name="n", created="", image_id="", image_name="", config={
        "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}}, host_config={
        "PublishAllPorts": True, "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.2", "HostPort": "8080"}]}})
    bindings = {(b.key, b.host_ip, b.host_port) for b in published(container)}
    assert bindings == {("80/tcp", "127.0.0.2", 8080), ("443/tcp", "127.0.0.1", 0)}


def test_store_round_trip(tmp_path: Path) -> None:
    store = NetworkStore(tmp_path)
    network = Network(id="n1", name="appnet", subnet="10.1.0.0/24", gateway="10.1.0.1", created="t",
                      labels={"a": "b"}, user_subnet=True)
    store.save(network)
    assert store.load() == [network]
    store.delete(network)
    assert store.load() == []


def test_names() -> None:
    assert validate_name("my-net_1.x") == "my-net_1.x"
    for bad in ("", "-x", "a b", "a/b"):
        with pytest.raises(InvalidArgument):
            validate_name(bad)
