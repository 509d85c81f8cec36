from __future__ import annotations

import base64
import zlib

import pytest

from minicloud.services.s3.checksums import Checksums, composite
from minicloud.services.s3.errors import InvalidBucketName, KeyTooLongError
from minicloud.services.s3.names import check_bucket_name, check_key
from minicloud.services.s3.store import prefix_end


@pytest.mark.parametrize("name", ["abc", "my.bucket-1", "a" * 63, "v2"[:0] + "v2x"])
def test_valid_bucket_names(name: str) -> None:
    check_bucket_name(name)


@pytest.mark.parametrize("name", ["ab", "a" * 64, "Abc", "a..b", "a.-b", "-ab", "ab-", "10.0.0.1", "xn--ab",
                                  "ab-s3alias", "_minicloud", "a_b"])
def test_invalid_bucket_names(name: str) -> None:
    with pytest.raises(InvalidBucketName):
        check_bucket_name(name)


def test_key_length_counts_utf8_bytes() -> None:
    check_key("é" * 512)
    with pytest.raises(KeyTooLongError):
        check_key("é" * 513)


def test_checksums_known_values() -> None:
    summer = Checksums({"CRC32", "CRC32C", "SHA256"})
    summer.update(b"1234")
    summer.update(b"56789")
    values = summer.values()
    assert values["CRC32"] == base64.b64encode(zlib.crc32(b"123456789").to_bytes(4, "big")).decode()
    assert base64.b64decode(values["CRC32C"]).hex() == "e3069283"  # the CRC-32C check value
    crc64 = Checksums({"CRC64NVME"})
    crc64.update(b"123456789")
    assert base64.b64decode(crc64.values()["CRC64NVME"]).hex() == "ae8b14860a799888"


def test_composite_checksum_has_part_count() -> None:
    one = base64.b64encode(b"\x00\x00\x00\x01").decode()
    assert composite("CRC32", [one, one]).endswith("-2")


def test_prefix_end_orders_after_every_extension() -> None:
    assert prefix_end("photos/") == "photos0"
    assert prefix_end("photos/") > "photos/zzz\U0010ffff"
    assert prefix_end("a\U0010ffff") == "b"
