from __future__ import annotations

import struct

from minicloud.engine.network import dns


def query(name: str, qtype: int = dns.TYPE_A, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


def lookup(name: str, client: str) -> list[str] | None:
    assert client == "172.18.0.3"
    return {"web": ["172.18.0.2"], "both": ["172.18.0.2", "172.18.0.4"]}.get(name)


def header(response: bytes) -> tuple[int, int, int, int]:
    ident, flags, _qd, answers = struct.unpack("!HHHH", response[:8])
    return ident, flags & 0xF, answers, flags


def test_a_record() -> None:
    response = dns.answer(query("web"), lookup, "172.18.0.3")
    assert response is not None
    ident, rcode, answers, flags = header(response)
    assert (ident, rcode, answers) == (0x1234, 0, 1) and flags & 0x8000 and flags & 0x0100
    assert response.endswith(bytes([172, 18, 0, 2]))


def test_names_are_case_insensitive() -> None:
    response = dns.answer(query("WeB"), lookup, "172.18.0.3")
    assert response is not None and header(response)[2] == 1


def test_several_addresses() -> None:
    response = dns.answer(query("both"), lookup, "172.18.0.3")
    assert response is not None and header(response)[2] == 2


def test_unknown_is_nxdomain_and_aaaa_is_empty() -> None:
    unknown = dns.answer(query("example.com"), lookup, "172.18.0.3")
    assert unknown is not None and header(unknown)[1] == dns.RCODE_NXDOMAIN
    aaaa = dns.answer(query("web", dns.TYPE_AAAA), lookup, "172.18.0.3")
    assert aaaa is not None and header(aaaa)[1:3] == (0, 0)


def test_malformed() -> None:
    assert dns.answer(b"\0\1", lookup, "172.18.0.3") is None
    broken = dns.answer(query("web")[:14], lookup, "172.18.0.3")
    assert broken is not None and header(broken)[1] == dns.RCODE_FORMERR
