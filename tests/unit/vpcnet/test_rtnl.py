from __future__ import annotations

import struct

from minicloud.vpcnet.rtnl import _attr, _ifinfo


def test_attributes_are_padded_to_four_bytes() -> None:
    assert _attr(3, b"eth0\0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0\0\0"
    assert _attr(28, struct.pack("=I", 7)) == struct.pack("=HHI", 8, 28, 7)
    nested = _attr(18, _attr(1, b"veth\0"))
    assert struct.unpack_from("=HH", nested) == (16, 18) and len(nested) == 16


def test_ifinfomsg_is_sixteen_bytes() -> None:
    assert len(_ifinfo()) == 16
    assert struct.unpack("=BxHiII", _ifinfo(5, 1, 1)) == (0, 0, 5, 1, 1)
