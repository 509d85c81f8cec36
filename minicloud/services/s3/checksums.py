"""The checksums S3 stores beside an object: CRC32, CRC32C, SHA1, SHA256 (base64 of the big-endian
digest, as the x-amz-checksum-* headers carry them), computed incrementally while bytes stream in."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from typing import Any

ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME")
HEADER = {name: f"x-amz-checksum-{name.lower()}" for name in ALGORITHMS}
MEMBER = {"CRC32": "ChecksumCRC32", "CRC32C": "ChecksumCRC32C", "SHA1": "ChecksumSHA1",
          "SHA256": "ChecksumSHA256", "CRC64NVME": "ChecksumCRC64NVME"}


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


def _crc64nvme_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x9A6C9329AC4BC9B5 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()
_CRC64_TABLE = _crc64nvme_table()


def _crc32c_python(data: bytes, crc: int) -> int:
    crc ^= 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc32c_function() -> Callable[[bytes, int], int]:
    try:
        import google_crc32c  # type: ignore[import-not-found]

        return lambda data, crc: int(google_crc32c.extend(crc, data))
    except ImportError:
        pass
    try:
        import crc32c  # type: ignore[import-not-found]

        return lambda data, crc: int(crc32c.crc32c(data, crc))
    except ImportError:
        return _crc32c_python


_crc32c = _crc32c_function()


def _crc64nvme(data: bytes, crc: int) -> int:
    crc ^= 0xFFFFFFFFFFFFFFFF
    table = _CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


class _Crc:
    def __init__(self, fn: Callable[[bytes, int], int], width: int) -> None:
        self._fn = fn
        self._width = width
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def new_hasher(algorithm: str) -> Any:
    if algorithm == "CRC32":
        return _Crc(zlib.crc32, 4)
    if algorithm == "CRC32C":
        return _Crc(_crc32c, 4)
    if algorithm == "CRC64NVME":
        return _Crc(_crc64nvme, 8)
    return hashlib.new(algorithm.lower())


class Checksums:
    """Computes the requested algorithms over the bytes fed to it."""

    def __init__(self, algorithms: set[str]) -> None:
        self._hashers = {name: new_hasher(name) for name in algorithms}

    def update(self, data: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def values(self) -> dict[str, str]:
        return {name: base64.b64encode(h.digest()).decode("ascii") for name, h in self._hashers.items()}


def composite(algorithm: str, part_values: list[str]) -> str:
    """A multipart object's composite checksum: the checksum of the parts' binary checksums,
    followed by ``-<number of parts>``."""
    hasher = new_hasher(algorithm)
    for value in part_values:
        hasher.update(base64.b64decode(value))
    return base64.b64encode(hasher.digest()).decode("ascii") + f"-{len(part_values)}"


# Reflected polynomials and widths of the CRCs whose values combine across parts.
CRC_PARAMETERS = {"CRC32": (0xEDB88320, 32), "CRC32C": (0x82F63B78, 32), "CRC64NVME": (0x9A6C9329AC4BC9B5, 64)}


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, column) for column in matrix]


def crc_combine(algorithm: str, first: int, second: int, second_length: int) -> int:
    """The CRC of A+B from crc(A), crc(B) and len(B), by applying len(B) zero bytes to crc(A)
    as GF(2) matrix powers (the method of zlib's crc32_combine)."""
    if second_length == 0:
        return first
    polynomial, width = CRC_PARAMETERS[algorithm]
    odd = [polynomial] + [1 << (n - 1) for n in range(1, width)]  # one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # a zero byte, then doubling
        if second_length & 1:
            first = _gf2_times(even, first)
        second_length >>= 1
        if not second_length:
            break
        odd = _gf2_square(even)
        if second_length & 1:
            first = _gf2_times(odd, first)
        second_length >>= 1
        if not second_length:
            break
    return first ^ second


def full_object(algorithm: str, parts: list[tuple[str, int]]) -> str:
    """A multipart object's FULL_OBJECT checksum from its parts' (base64 value, size)."""
    width = CRC_PARAMETERS[algorithm][1] // 8
    combined = 0
    for index, (value, size) in enumerate(parts):
        crc = int.from_bytes(base64.b64decode(value), "big")
        combined = crc if index == 0 else crc_combine(algorithm, combined, crc, size)
    return base64.b64encode(combined.to_bytes(width, "big")).decode("ascii")
