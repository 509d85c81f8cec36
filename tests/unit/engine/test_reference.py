from __future__ import annotations

import pytest

from minicloud.engine.errors import InvalidArgument
from minicloud.engine.images.reference import looks_like_id, parse

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "normalised", "familiar"), [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1", "localhost:5000/a/b:v1"),
    ("127.0.0.1:4566/team/app", "127.0.0.1:4566/team/app:latest", "127.0.0.1:4566/team/app:latest"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"reg.example.com/x:tag@{DIGEST}", f"reg.example.com/x:tag@{DIGEST}", f"reg.example.com/x:tag@{DIGEST}"),
    ("a__b/c-d.e", "docker.io/a__b/c-d.e:latest", "a__b/c-d.e:latest"),
])
def test_normalisation(text: str, normalised: str, familiar: str) -> None:
    ref = parse(text)
    assert str(ref) == normalised
    assert ref.familiar() == familiar


def test_parts() -> None:
    ref = parse("localhost:5000/team/app:v2")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "team/app", "v2", None)
    assert ref.repository == "localhost:5000/team/app"
    assert parse(f"app@{DIGEST}").tag is None
    assert parse("app", default_tag=False).tag is None


@pytest.mark.parametrize("text", [
    "", " busybox", "Busybox", "busybox:", "busybox:-x", "a/B/c", "busybox@sha256:abc", "-app",
    "app:" + "x" * 129, "a//b", "host:port/app",
])
def test_malformed(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        parse(text)


def test_with_tag() -> None:
    assert str(parse("busybox").with_tag("1.0")) == "docker.io/library/busybox:1.0"
    with pytest.raises(InvalidArgument):
        parse("busybox").with_tag("bad tag")


def test_looks_like_id() -> None:
    assert looks_like_id("a" * 64)
    assert looks_like_id("sha256:" + "0" * 64)
    assert not looks_like_id("abc")
    assert not looks_like_id("busybox")
