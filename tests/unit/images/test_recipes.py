"""Recipes, their selection and build keys, OCI documents, the cache, the mmdebstrap command line."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from minicloud.images import RECIPES, File, ImageConfig, Recipe, RecipeError, register
from minicloud.images import library as lib
from minicloud.images.builder import Builder
from minicloud.images.busybox import entries as busybox_entries
from minicloud.images.cache import CachedImage, ImageCache, default_cache_dir
from minicloud.images.layers import write_layer
from minicloud.images.oci import (
    MEDIA_CONFIG,
    MEDIA_LAYER_GZIP,
    MEDIA_MANIFEST,
    LayerRecord,
    image_config,
    image_manifest,
)
from minicloud.images.recipes import chain, select
from minicloud.images.rootfs import DebianSource, mmdebstrap_command


@pytest.fixture
def scratch_recipes() -> Iterator[None]:
    saved = dict(RECIPES)
    yield
    RECIPES.clear()
    RECIPES.update(saved)


def test_library_recipes_are_registered() -> None:
    assert {"busybox", "debian", "debian-slim", "python", "python-slim", "nginx", "postgres", "mariadb"} <= set(RECIPES)
    assert chain("nginx") == [lib.DEBIAN_SLIM, lib.NGINX]
    assert lib.NGINX.config.to_oci() == {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["nginx", "-g", "daemon off;"], "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT"}
    postgres = lib.POSTGRES_IMAGE.config.to_oci()
    assert postgres["Entrypoint"] == ["docker-entrypoint.sh"] and postgres["Cmd"] == ["postgres"]
    assert "PGDATA=/var/lib/postgresql/data" in postgres["Env"]  # type: ignore[operator]


def test_select_by_name_repository_and_tag() -> None:
    assert select(["debian"]) == [lib.DEBIAN]
    assert select(["library/debian"]) == [lib.DEBIAN, lib.DEBIAN_SLIM]
    assert select(["debian:bookworm-slim", "python:3.11-slim", "nginx", "nginx"]) == \
        [lib.DEBIAN_SLIM, lib.PYTHON_SLIM, lib.NGINX]
    with pytest.raises(RecipeError, match="unknown image 'nosuch'"):
        select(["nosuch"])


def test_register_refuses_a_different_recipe_under_a_taken_name(scratch_recipes: None) -> None:
    ami = Recipe(name="ami-test", repository="minicloud/ami-test", tags=("v1",), base="debian",
                 packages=("openssh-server", "sudo"), commands=("useradd -m admin",))
    assert register(ami) is ami and register(ami) is ami
    with pytest.raises(RecipeError, match="already registered"):
        register(Recipe(name="ami-test", repository="minicloud/ami-test", tags=("v2",)))
    assert chain("ami-test") == [lib.DEBIAN, ami]
    register(Recipe(name="loop-a", repository="x/a", tags=("1",), base="loop-b"))
    register(Recipe(name="loop-b", repository="x/b", tags=("1",), base="loop-a"))
    with pytest.raises(RecipeError, match="cycle"):
        chain("loop-a")


def test_recipe_validation() -> None:
    with pytest.raises(ValueError, match="at least one tag"):
        Recipe(name="x", repository="x", tags=())
    with pytest.raises(ValueError, match="busybox"):
        Recipe(name="x", repository="x", tags=("1",), kind="busybox", packages=("curl",))
    with pytest.raises(ValueError, match="absolute"):
        File("etc/x", b"")


def test_build_keys_follow_what_the_layers_depend_on(tmp_path: Path) -> None:
    builder = Builder(ImageCache(tmp_path))
    base = CachedImage("basekey", "debian", ())
    key = builder.key_for(lib.NGINX, base)
    assert key == builder.key_for(lib.NGINX, base)
    assert key != builder.key_for(lib.NGINX, CachedImage("otherbase", "debian", ()))
    config_only = dataclasses.replace(lib.NGINX, config=ImageConfig(cmd=("sh",)))
    assert builder.key_for(config_only, base) == key  # the runtime config is not part of the layer
    more = dataclasses.replace(lib.NGINX, packages=("nginx-light", "curl"))
    assert builder.key_for(more, base) != key
    other_suite = Builder(ImageCache(tmp_path), DebianSource(suite="trixie"))
    assert other_suite.key_for(lib.NGINX, base) != key


def test_config_and_manifest_documents() -> None:
    layers = [LayerRecord("sha256:" + "a" * 64, "sha256:" + "b" * 64, 10, "2026-01-01T00:00:00Z", "base"),
              LayerRecord("sha256:" + "c" * 64, "sha256:" + "d" * 64, 20, "2026-01-02T00:00:00Z", "nginx")]
    config = image_config(lib.NGINX.config, layers)
    doc = json.loads(config.data)
    assert (doc["os"], doc["architecture"], doc["created"]) == ("linux", "amd64", "2026-01-02T00:00:00Z")
    assert doc["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "b" * 64, "sha256:" + "d" * 64]}
    assert [h["created_by"] for h in doc["history"]] == ["base", "nginx"]
    assert config.digest == "sha256:" + hashlib.sha256(config.data).hexdigest() and config.size == len(config.data)
    manifest = json.loads(image_manifest(config, layers).data)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MEDIA_MANIFEST
    assert manifest["config"] == {"mediaType": MEDIA_CONFIG, "digest": config.digest, "size": config.size}
    assert manifest["layers"] == [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer.digest, "size": layer.size}
                                  for layer in layers]
    assert image_config(lib.NGINX.config, layers).data == config.data  # deterministic


def test_cache_round_trip_and_missing_blobs(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path)
    blob = write_layer(iter([]), cache.blob_dir)
    record = LayerRecord(blob.digest, blob.diff_id, blob.size, "2026-01-01T00:00:00Z", "empty")
    cache.save(CachedImage("k1", "x", (record,)))
    assert cache.load("k1") == CachedImage("k1", "x", (record,))
    assert cache.load("nokey") is None
    blob.path.unlink()
    assert cache.load("k1") is None  # a record whose blob is gone is rebuilt
    fd = cache.lock("k1")
    cache.unlock(fd)


def test_default_cache_dir() -> None:
    assert default_cache_dir({"MINICLOUD_IMAGE_CACHE": "/x/y"}) == Path("/x/y")
    assert default_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/minicloud/images")


def test_busybox_layer_entries() -> None:
    items = list(busybox_entries(b"\x7fELF busybox", ["sh", "busybox", "ls", "["], 1))
    names = [info.name for info, _ in items]
    assert names == sorted(names)
    applets = [(info, opener) for info, opener in items if info.name.startswith("bin/")]
    first, opener = applets[0]
    assert first.name == "bin/[" and first.isreg() and first.mode == 0o755
    source = opener()
    assert isinstance(source, io.BytesIO) and source.read() == b"\x7fELF busybox"
    assert all(info.islnk() and info.linkname == "bin/[" for info, _ in applets[1:])
    by_name = {info.name: info for info, _ in items}
    assert by_name["tmp"].mode == 0o1777 and by_name["etc/passwd"].isreg()
    assert by_name["etc/passwd"].type == tarfile.REGTYPE


def test_mmdebstrap_command_lines(tmp_path: Path) -> None:
    source = DebianSource()
    root = mmdebstrap_command(lib.DEBIAN_SLIM, source, tmp_path / "out.tar", tmp_path, slim=True)
    assert "--variant=minbase" in root and "--dpkgopt=path-exclude=/usr/share/doc/*" in root
    assert root[-5:] == ["bookworm", str(tmp_path / "out.tar"), "deb http://deb.debian.org/debian bookworm main",
                         "deb http://deb.debian.org/debian bookworm-updates main",
                         "deb http://deb.debian.org/debian-security bookworm-security main"]
    layer = tmp_path / "base.tar.gz"
    derived = mmdebstrap_command(lib.POSTGRES_IMAGE, source, tmp_path / "out.tar", tmp_path, [layer], slim=True)
    assert "--variant=custom" in derived
    assert f'--setup-hook=tar -C "$1" -xzf {layer}' in derived
    assert any("apt-get install --yes --no-install-recommends postgresql-15" in a for a in derived)
    assert (tmp_path / "file0").read_bytes().startswith(b"#!/bin/bash")
    assert any(a.startswith("--customize-hook=install -D -m 755") and "docker-entrypoint.sh" in a for a in derived)
    busybox = mmdebstrap_command(lib.BUSYBOX, source, tmp_path / "out.tar", tmp_path)
    assert "--variant=extract" in busybox and "--include=busybox-static" in busybox


def test_abandoned_work_directories_are_swept(tmp_path: Path) -> None:
    ImageCache(tmp_path)
    abandoned = tmp_path / ".build-999999999-abc"
    (abandoned / "rootfs.tar").parent.mkdir()
    (abandoned / "rootfs.tar").write_bytes(b"x")
    mine = ImageCache(tmp_path).work_dir()
    ImageCache(tmp_path)
    assert not abandoned.exists() and mine.exists() and mine.name.startswith(f".build-{os.getpid()}-")
