"""The seed directory, the binds and the AMI recipes the EC2 controller uses."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from minicloud.images import RECIPES
from minicloud.services.ec2.guest import (
    AMI_RECIPES,
    AMIS,
    BOOT_SCRIPT,
    DEBIAN_AMI,
    Seed,
    boot_command,
    guest_binds,
    unpacked_user_data,
    write_seed,
)
from minicloud.services.ec2.guest.seed import GUEST_FILES

KEYS = ("ssh-ed25519 AAAAC3Nza one@host", "  ssh-rsa AAAAB3Nza two@host  ", "")


def test_write_seed_lays_out_the_files(tmp_path: Path) -> None:
    write_seed(tmp_path, Seed("i-0abc", "ip-10-0-1-5.ec2.internal", b"#!/bin/sh\necho hi\n", KEYS))
    seed = tmp_path / "seed"
    assert (seed / "instance-id").read_text() == "i-0abc\n"
    assert (seed / "hostname").read_text() == "ip-10-0-1-5.ec2.internal\n"
    assert (seed / "public-keys").read_text() == "ssh-ed25519 AAAAC3Nza one@host\nssh-rsa AAAAB3Nza two@host\n"
    assert (seed / "user-data").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (seed / "user-data").stat().st_mode & 0o777 == 0o600
    assert "instance-id: i-0abc" in (seed / "meta-data").read_text()
    # Written again without user data (ModifyInstanceAttribute cleared it): the file goes.
    write_seed(tmp_path, Seed("i-0abc", "ip-10-0-1-5.ec2.internal", None, ()))
    assert not (seed / "user-data").exists() and (seed / "public-keys").read_text() == ""
    assert not [p for p in seed.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize("bad", [Seed("", "h", None, ()), Seed("i-1", "a b", None, ()),
                                 Seed("i-1/..", "h", None, ()), Seed("i-1", "h", None, ("ssh-ed25519 A\nB",))])
def test_write_seed_refuses_what_would_break_the_layout(tmp_path: Path, bad: Seed) -> None:
    with pytest.raises(ValueError):
        write_seed(tmp_path, bad)


def test_gzip_user_data_is_unpacked_and_bounded() -> None:
    assert unpacked_user_data(gzip.compress(b"#!/bin/sh\ntrue\n")) == b"#!/bin/sh\ntrue\n"
    bomb = gzip.compress(b"\0" * (2 << 20))
    assert unpacked_user_data(bomb) == bomb  # more than 1 MiB unpacked: left as given
    assert unpacked_user_data(b"\x1f\x8bnot gzip") == b"\x1f\x8bnot gzip"
    assert unpacked_user_data(b"plain") == b"plain"


def test_binds_and_command(tmp_path: Path) -> None:
    binds = guest_binds(tmp_path)
    assert {(b.source, b.target, b.read_only) for b in binds} == {
        (str(GUEST_FILES), "/run/minicloud/guest", True), (str(tmp_path / "seed"), "/run/minicloud/seed", True)}
    assert boot_command() == ["/bin/sh", BOOT_SCRIPT]
    assert (GUEST_FILES / "boot.sh").is_file() and (GUEST_FILES / "shutdown.sh").is_file()


def test_ami_recipes_are_registered_images() -> None:
    assert RECIPES["ami-debian"] is DEBIAN_AMI
    assert DEBIAN_AMI.base == "debian" and "openssh-server" in DEBIAN_AMI.packages and "sudo" in DEBIAN_AMI.packages
    assert [ami.recipe for ami in AMIS] == AMI_RECIPES
    assert [ami.image for ami in AMIS] == ["minicloud/ami-debian:bookworm", "library/busybox:latest"]
    assert AMIS[0].default_user == "admin" and AMIS[1].default_user is None
