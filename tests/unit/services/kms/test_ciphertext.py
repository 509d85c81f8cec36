"""The KMS ciphertext format: self-describing, bound to its key and encryption context."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from minicloud.services.kms import ciphertext
from minicloud.services.kms.ciphertext import MalformedCiphertext, MasterKey

KEY_ID = str(uuid.uuid4())


def test_blob_names_its_key_and_round_trips_with_its_context() -> None:
    material = ciphertext.new_material()
    blob = ciphertext.encrypt(material, KEY_ID, b"secret", {"b": "2", "a": "1"})
    assert blob[0] == ciphertext.VERSION
    parsed = ciphertext.parse_blob(blob)
    assert parsed.key_id == KEY_ID
    assert len(blob) == ciphertext.HEADER + len(b"secret") + ciphertext.TAG
    # the context's order does not matter; its content does
    assert ciphertext.decrypt(material, parsed, {"a": "1", "b": "2"}) == b"secret"


@pytest.mark.parametrize("context", [None, {}, {"a": "1"}, {"a": "1", "b": "3"}])
def test_a_different_context_fails(context: dict[str, str] | None) -> None:
    material = ciphertext.new_material()
    parsed = ciphertext.parse_blob(ciphertext.encrypt(material, KEY_ID, b"x", {"a": "1", "b": "2"}))
    with pytest.raises(MalformedCiphertext):
        ciphertext.decrypt(material, parsed, context)


def test_empty_context_equals_no_context() -> None:
    material = ciphertext.new_material()
    parsed = ciphertext.parse_blob(ciphertext.encrypt(material, KEY_ID, b"x", None))
    assert ciphertext.decrypt(material, parsed, {}) == b"x"


def test_another_key_or_a_changed_byte_fails() -> None:
    material = ciphertext.new_material()
    blob = ciphertext.encrypt(material, KEY_ID, b"payload", None)
    with pytest.raises(MalformedCiphertext):
        ciphertext.decrypt(ciphertext.new_material(), ciphertext.parse_blob(blob), None)
    for position in (ciphertext.HEADER - 1, ciphertext.HEADER, len(blob) - 1):
        altered = bytearray(blob)
        altered[position] ^= 1
        with pytest.raises(MalformedCiphertext):
            ciphertext.decrypt(material, ciphertext.parse_blob(bytes(altered)), None)
    # the key id is bound too: the same bytes claimed by another key id do not open
    other = str(uuid.uuid4()).encode()
    moved = blob[:1] + other + blob[1 + ciphertext.KEY_ID_BYTES:]
    with pytest.raises(MalformedCiphertext):
        ciphertext.decrypt(material, ciphertext.parse_blob(moved), None)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x02" + b"0" * 80,
                                  b"\x01" + b"not-a-uuid".ljust(36, b"x") + b"0" * 40,
                                  b"\x01" + str(uuid.uuid4()).encode() + b"short"])
def test_malformed_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(MalformedCiphertext):
        ciphertext.parse_blob(blob)


def test_master_key_file_is_private_and_wraps_material_bound_to_the_key(tmp_path: Path) -> None:
    path = tmp_path / "kms" / "master.key"
    master = MasterKey.load_or_create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    material = ciphertext.new_material()
    wrapped = master.wrap(KEY_ID, material)
    assert material not in wrapped
    assert MasterKey.load_or_create(path).unwrap(KEY_ID, wrapped) == material  # the same key after a restart
    with pytest.raises(MalformedCiphertext):
        master.unwrap(str(uuid.uuid4()), wrapped)
    with pytest.raises(MalformedCiphertext):
        MasterKey.load_or_create(tmp_path / "other" / "master.key").unwrap(KEY_ID, wrapped)
