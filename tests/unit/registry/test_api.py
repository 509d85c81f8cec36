"""The OCI Distribution API in process: exact headers, error codes, uploads, auth decisions."""

from __future__ import annotations

import json
import os

from minicloud.registry.manifests import OCI_INDEX, OCI_MANIFEST
from tests.unit.registry.conftest import Registry, digest

DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


def test_base_needs_credentials_and_names_the_token_realm(registry: Registry) -> None:
    r = registry.call("GET", "/v2/", {"host": "reg.local:4566"}, auth=False)
    assert r.status == 401 and r.code == "UNAUTHORIZED"
    assert r.headers["www-authenticate"] == (
        'Bearer realm="http://reg.local:4566/_minicloud/registry/token",service="minicloud"')
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert registry.call("GET", "/v2/").status == 200
    bad = registry.call("GET", "/v2/", {"authorization": "Basic " + "bm9ib2R5Om5vcGU="}, auth=False)
    assert bad.status == 401


def test_token_flow(registry: Registry) -> None:
    r = registry.call("GET", "/v2/team/app/tags/list", auth=False)
    assert r.status == 401
    assert 'scope="repository:team/app:pull"' in r.headers["www-authenticate"]
    t = registry.call("GET", "/_minicloud/registry/token?service=minicloud&scope=repository:team/app:pull,push")
    assert t.status == 200
    token = t.json()["token"]
    assert t.json()["access_token"] == token and t.json()["expires_in"] > 0
    bearer = {"authorization": f"Bearer {token}"}
    registry.push_blob("team/app", b"blob", bearer)
    assert registry.call("GET", "/v2/team/app/tags/list", bearer, auth=False).status == 200
    # The token covers this repository only.
    other = registry.call("GET", "/v2/team/other/tags/list", bearer, auth=False)
    assert other.status == 401 and 'error="insufficient_scope"' in other.headers["www-authenticate"]
    forged = registry.call("GET", "/v2/team/app/tags/list", {"authorization": f"Bearer {token}x"}, auth=False)
    assert forged.status == 401 and 'error="invalid_token"' in forged.headers["www-authenticate"]
    wrong = registry.call("GET", "/_minicloud/registry/token?scope=repository:a:pull",
                          {"authorization": "Basic " + "eDp5"}, auth=False)
    assert wrong.status == 401


def test_monolithic_push_and_blob_reads_with_ranges(registry: Registry) -> None:
    data = os.urandom(3000)
    d = registry.push_blob("blobs/test", data)
    head = registry.call("HEAD", f"/v2/blobs/test/blobs/{d}")
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == "3000" and head.headers["docker-content-digest"] == d
    assert registry.call("GET", f"/v2/blobs/test/blobs/{d}").body == data
    part = registry.call("GET", f"/v2/blobs/test/blobs/{d}", {"range": "bytes=10-19"})
    assert part.status == 206 and part.body == data[10:20]
    assert part.headers["content-range"] == "bytes 10-19/3000" and part.headers["content-length"] == "10"
    tail = registry.call("GET", f"/v2/blobs/test/blobs/{d}", {"range": "bytes=-5"})
    assert tail.body == data[-5:]
    bad = registry.call("GET", f"/v2/blobs/test/blobs/{d}", {"range": "bytes=5000-"})
    assert bad.status == 416 and bad.headers["content-range"] == "bytes */3000"
    assert registry.call("GET", "/v2/blobs/test/blobs/sha256:nothex").code == "DIGEST_INVALID"
    assert registry.call("GET", f"/v2/blobs/test/blobs/{digest(b'x')}").code == "BLOB_UNKNOWN"
    wrong = registry.call("POST", f"/v2/blobs/test/blobs/uploads/?digest={digest(b'other')}", body=b"data")
    assert wrong.status == 400 and wrong.code == "DIGEST_INVALID"


def test_chunked_upload_in_order_status_and_out_of_order(registry: Registry) -> None:
    data = os.urandom(5000)
    r = registry.call("POST", "/v2/chunks/blobs/uploads/")
    assert r.status == 202 and r.headers["range"] == "0-0"
    location = r.headers["location"]
    assert location.startswith("http://127.0.0.1/v2/chunks/blobs/uploads/")
    assert r.headers["docker-upload-uuid"] in location
    r = registry.call("PATCH", location, {"content-range": "0-1999", "content-length": "2000"}, body=data[:2000])
    assert r.status == 202 and r.headers["range"] == "0-1999" and r.headers["location"] == location
    status = registry.call("GET", location)
    assert status.status == 204 and status.headers["range"] == "0-1999"
    late = registry.call("PATCH", location, {"content-range": "0-99", "content-length": "100"}, body=data[:100])
    assert late.status == 416 and late.headers["range"] == "0-1999"
    # streamed: no Content-Range, chunked transfer encoding
    r = registry.call("PATCH", location, chunks=[data[2000:3000], data[3000:4000]])
    assert r.status == 202 and r.headers["range"] == "0-3999"
    done = registry.call("PUT", f"{location}?digest={digest(data)}", body=data[4000:])
    assert done.status == 201 and done.headers["location"] == f"http://127.0.0.1/v2/chunks/blobs/{digest(data)}"
    assert registry.call("GET", f"/v2/chunks/blobs/{digest(data)}").body == data
    assert registry.call("GET", location).code == "BLOB_UPLOAD_UNKNOWN"


def test_upload_survives_a_restart_and_cancel(registry: Registry) -> None:
    data = os.urandom(4000)
    location = registry.call("POST", "/v2/restart/blobs/uploads/").headers["location"]
    registry.call("PATCH", location, body=data[:1500])
    registry.restart()
    assert registry.call("GET", location).headers["range"] == "0-1499"
    registry.call("PATCH", location, body=data[1500:])
    assert registry.call("PUT", f"{location}?digest={digest(data)}").status == 201
    other = registry.call("POST", "/v2/restart/blobs/uploads/").headers["location"]
    assert registry.call("DELETE", other).status == 204
    assert registry.call("PATCH", other, body=b"x").code == "BLOB_UPLOAD_UNKNOWN"


def test_manifest_push_pull_exact_headers(registry: Registry) -> None:
    d, body = registry.push_image("img/app", "v1")
    for ref in ("v1", d):
        r = registry.call("GET", f"/v2/img/app/manifests/{ref}", {"accept": DOCKER + ", " + OCI_MANIFEST})
        assert r.status == 200 and r.body == body
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == d and r.headers["content-length"] == str(len(body))
        head = registry.call("HEAD", f"/v2/img/app/manifests/{ref}")
        assert head.body == b"" and head.headers["content-length"] == str(len(body))
    assert registry.call("GET", "/v2/img/app/manifests/nope").code == "MANIFEST_UNKNOWN"
    assert registry.call("GET", "/v2/img/nothing/manifests/v1").code == "NAME_UNKNOWN"
    assert registry.call("GET", "/v2/Bad_Name/manifests/v1").code == "NAME_INVALID"


def test_manifest_errors_are_the_specs(registry: Registry) -> None:
    put = "/v2/err/app/manifests/v1"
    ct = {"content-type": OCI_MANIFEST}
    assert registry.call("PUT", put, ct, body=b"{not json").code == "MANIFEST_INVALID"
    assert registry.call("PUT", put, ct, body=b"[]").code == "MANIFEST_INVALID"
    missing = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(b"absent"), "size": 6},
        "layers": []}).encode()
    r = registry.call("PUT", put, ct, body=missing)
    assert r.status == 400 and r.code == "MANIFEST_BLOB_UNKNOWN"
    r = registry.call("PUT", f"/v2/err/app/manifests/{digest(b'other')}", ct, body=missing)
    assert r.code == "DIGEST_INVALID"
    assert registry.call("PUT", "/v2/err/app/manifests/bad!tag", ct, body=missing).code == "TAG_INVALID"
    conflicting = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    assert registry.call("PUT", put, ct, body=conflicting).code == "MANIFEST_INVALID"
    big = registry.call("PUT", put, ct, body=b" " * (16 * 1024 * 1024 + 1))
    assert big.status == 413


def test_docker_manifest_list_index_referrers_and_subject(registry: Registry) -> None:
    child, child_body = registry.push_image("multi/app", "amd64", media_type=DOCKER)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": DOCKER, "digest": child, "size": len(child_body),
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    r = registry.call("PUT", "/v2/multi/app/manifests/latest", {"content-type": OCI_INDEX}, body=index)
    assert r.status == 201
    assert registry.call("GET", "/v2/multi/app/manifests/latest").headers["content-type"] == OCI_INDEX
    empty = b"{}"
    config = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": registry.push_blob("multi/app", empty),
              "size": 2}
    signature = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-sig",
                            "config": config, "layers": [config],
                            "subject": {"mediaType": DOCKER, "digest": child, "size": len(child_body)},
                            "annotations": {"who": "me"}}).encode()
    r = registry.call("PUT", f"/v2/multi/app/manifests/{digest(signature)}", {"content-type": OCI_MANIFEST},
                      body=signature)
    assert r.status == 201 and r.headers["oci-subject"] == child
    refs = registry.call("GET", f"/v2/multi/app/referrers/{child}")
    assert refs.headers["content-type"] == OCI_INDEX
    assert refs.json()["manifests"] == [{"mediaType": OCI_MANIFEST, "digest": digest(signature),
                                         "size": len(signature), "artifactType": "application/x-sig",
                                         "annotations": {"who": "me"}}]
    filtered = registry.call("GET", f"/v2/multi/app/referrers/{child}?artifactType=application/x-other")
    assert filtered.json()["manifests"] == [] and filtered.headers["oci-filters-applied"] == "artifactType"


def test_tags_pagination_catalog_and_deletes(registry: Registry) -> None:
    d, _ = registry.push_image("tags/app", "a")
    for tag in ("c", "b", "d"):
        registry.call("PUT", f"/v2/tags/app/manifests/{tag}", {"content-type": OCI_MANIFEST},
                      body=registry.call("GET", f"/v2/tags/app/manifests/{d}").body)
    assert registry.call("GET", "/v2/tags/app/tags/list").json() == {"name": "tags/app", "tags": ["a", "b", "c", "d"]}
    page = registry.call("GET", "/v2/tags/app/tags/list?n=2")
    assert page.json()["tags"] == ["a", "b"]
    assert page.headers["link"] == '</v2/tags/app/tags/list?n=2&last=b>; rel="next"'
    assert registry.call("GET", "/v2/tags/app/tags/list?n=2&last=b").json()["tags"] == ["c", "d"]
    assert "link" not in registry.call("GET", "/v2/tags/app/tags/list?n=2&last=b").headers
    assert registry.call("GET", "/v2/tags/app/tags/list?n=x").code == "PAGINATION_NUMBER_INVALID"
    assert "tags/app" in registry.call("GET", "/v2/_catalog").json()["repositories"]
    assert registry.call("DELETE", "/v2/tags/app/manifests/a").status == 202
    assert registry.call("GET", "/v2/tags/app/manifests/a").code == "MANIFEST_UNKNOWN"
    assert registry.call("DELETE", f"/v2/tags/app/manifests/{d}").status == 202
    assert registry.call("GET", "/v2/tags/app/tags/list").json()["tags"] == []
    blob = registry.push_blob("tags/app", b"to delete")
    assert registry.call("DELETE", f"/v2/tags/app/blobs/{blob}").status == 202
    assert registry.call("HEAD", f"/v2/tags/app/blobs/{blob}").status == 404
    assert registry.call("PATCH", "/v2/tags/app/manifests/x").status == 405


def test_cross_repository_mount(registry: Registry) -> None:
    blob = registry.push_blob("mount/src", b"shared layer")
    r = registry.call("POST", f"/v2/mount/dst/blobs/uploads/?mount={blob}&from=mount/src")
    assert r.status == 201 and r.headers["location"] == f"http://127.0.0.1/v2/mount/dst/blobs/{blob}"
    missing = registry.call("POST", f"/v2/mount/dst/blobs/uploads/?mount={digest(b'no')}&from=mount/src")
    assert missing.status == 202 and "/blobs/uploads/" in missing.headers["location"]


def test_iam_decides_and_repository_policy_opens_anonymous_pulls(registry: Registry) -> None:
    registry.push_image("owned/app", "v1")
    nobody = registry.user("nobody")
    r = registry.call("GET", "/v2/owned/app/manifests/v1", nobody, auth=False)
    assert r.status == 403 and r.code == "DENIED"
    reader = registry.user("reader", {"Effect": "Allow", "Action": ["ecr:BatchGetImage",
                                                                     "ecr:GetDownloadUrlForLayer"],
                                      "Resource": "*"})
    assert registry.call("GET", "/v2/owned/app/manifests/v1", reader, auth=False).status == 200
    r = registry.call("POST", "/v2/owned/app/blobs/uploads/", reader, auth=False)
    assert r.status == 403
    assert registry.call("GET", "/v2/owned/app/manifests/v1", auth=False).status == 401
    public = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]})

    def set_policy(conn: object) -> None:
        from minicloud.registry.repositories import get_repository, update_repository
        repo = get_repository(conn, "owned/app")  # type: ignore[arg-type]
        assert repo is not None
        update_repository(conn, repo.id, policy=public)  # type: ignore[arg-type]
    registry.runtime.db.write_sync(set_policy)
    registry.app.auth._decisions.clear()
    assert registry.call("GET", "/v2/owned/app/manifests/v1", auth=False).status == 200
    anon_push = registry.call("POST", "/v2/owned/app/blobs/uploads/", auth=False)
    assert anon_push.status == 401


def test_immutable_tags_refuse_a_retag(registry: Registry) -> None:
    registry.push_image("frozen/app", "v1", layer=b"one")

    def freeze(conn: object) -> None:
        from minicloud.registry.repositories import get_repository, update_repository
        repo = get_repository(conn, "frozen/app")  # type: ignore[arg-type]
        assert repo is not None
        update_repository(conn, repo.id, tag_mutability="IMMUTABLE")  # type: ignore[arg-type]
    registry.runtime.db.write_sync(freeze)
    config = b'{"architecture":"amd64","os":"linux"}'
    other = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": registry.push_blob("frozen/app", config), "size": len(config)}, "layers": []}).encode()
    r = registry.call("PUT", "/v2/frozen/app/manifests/v1", {"content-type": OCI_MANIFEST}, body=other)
    assert r.status == 400 and r.code == "TAG_INVALID" and "immutable" in r.json()["errors"][0]["message"]
    assert registry.call("PUT", "/v2/frozen/app/manifests/v2", {"content-type": OCI_MANIFEST}, body=other).status == 201


def test_garbage_collection_keeps_what_manifests_and_young_pushes_need(registry: Registry) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    image, _ = registry.push_image("gc/app", "v1", layer=b"kept layer")
    orphan = registry.push_blob("gc/app", b"orphan layer")
    upload = registry.call("POST", "/v2/gc/app/blobs/uploads/").headers["location"]
    registry.call("PATCH", upload, body=b"abandoned bytes")
    gc = registry.app.gc
    now = datetime.now(UTC)
    young = asyncio.run(gc.collect(now))  # everything is young: nothing goes
    assert not (young.blobs or young.links or young.uploads)
    later = asyncio.run(gc.collect(now + timedelta(days=2)))
    assert [d for _, d in later.links] == [orphan] and later.blobs == [orphan] and len(later.uploads) == 1
    assert registry.call("HEAD", f"/v2/gc/app/blobs/{orphan}").status == 404
    assert registry.call("GET", f"/v2/gc/app/manifests/{image}").status == 200
    layer = digest(b"kept layer")
    assert registry.call("GET", f"/v2/gc/app/blobs/{layer}").body == b"kept layer"
    assert registry.call("GET", upload).code == "BLOB_UPLOAD_UNKNOWN"
    # once the manifest is gone, its blobs follow
    registry.call("DELETE", f"/v2/gc/app/manifests/{image}")
    gone = asyncio.run(gc.collect(now + timedelta(days=3)))
    assert layer in gone.blobs and gone.bytes_freed > 0


def test_lifecycle_controller_expires_images_for_real(registry: Registry) -> None:
    import asyncio

    from minicloud.registry.repositories import get_repository, update_repository
    from minicloud.services.ecr.lifecycle import LifecycleController

    kept = [registry.push_image("life/app", f"keep{i}", layer=f"tagged {i}".encode())[0] for i in range(2)]
    untagged = []
    for i in range(3):
        d, _ = registry.push_image("life/app", "scratch", layer=f"untagged {i}".encode())
        untagged.append(d)
    registry.call("DELETE", "/v2/life/app/manifests/scratch")
    policy = json.dumps({"rules": [{"rulePriority": 1, "action": {"type": "expire"}, "selection": {
        "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}}]})

    def set_policy(conn: object) -> None:
        repo = get_repository(conn, "life/app")  # type: ignore[arg-type]
        assert repo is not None
        update_repository(conn, repo.id, lifecycle_policy=policy)  # type: ignore[arg-type]
    registry.runtime.db.write_sync(set_policy)
    asyncio.run(LifecycleController(registry.runtime).reconcile())
    present = [d for d in untagged if registry.call("HEAD", f"/v2/life/app/manifests/{d}").status == 200]
    assert present == [untagged[-1]]  # the newest untagged image stays
    assert all(registry.call("HEAD", f"/v2/life/app/manifests/{d}").status == 200 for d in kept)


def test_garbage_collection_restores_a_zone_copy_a_push_left_short(registry: Registry) -> None:
    import asyncio
    import time
    from datetime import UTC, datetime, timedelta

    from minicloud.storage.blobs import Digest

    image, _ = registry.push_image("gc/short", "v1", layer=b"layer that lost a zone")
    layer = Digest.parse(digest(b"layer that lost a zone"))
    replicas = registry.app.blobs.replicas
    deadline = time.monotonic() + 10  # the push returned at a quorum; the third copy lands on its own
    while not all(r.path(layer).exists() for r in replicas) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(replicas) == 3 and all(r.path(layer).exists() for r in replicas)
    replicas[2].path(layer).unlink()  # as if the third zone had failed, or a crash came before its copy
    report = asyncio.run(registry.app.gc.collect(datetime.now(UTC) + timedelta(days=2)))
    assert f"{layer} {replicas[2].name}" in report.repaired and str(layer) not in report.blobs
    assert replicas[2].path(layer).read_bytes() == b"layer that lost a zone"
    assert registry.call("GET", f"/v2/gc/short/manifests/{image}").status == 200
