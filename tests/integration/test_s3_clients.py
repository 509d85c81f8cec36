"""S3 through other real clients: the AWS CLI (high-level ``s3`` and ``s3api``), curl, raw HTTP
edge cases; and a kill -9 during concurrent uploads."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.server import MinicloudServer

MiB = 1024 * 1024


def new_bucket(server: MinicloudServer) -> str:
    name = f"cli-{uuid.uuid4().hex[:12]}"
    server.aws("s3", "mb", f"s3://{name}")
    return name


def test_cli_cp_sync_mv_rm_ls(server: MinicloudServer, tmp_path: Path) -> None:
    bucket = new_bucket(server)
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    files = {"a.txt": b"alpha", "nested/b.bin": os.urandom(20 * MiB), "nested/c.txt": b"gamma"}
    for name, data in files.items():
        (src / name).write_bytes(data)
        # S3's LastModified has whole seconds: a file written in the same second as its upload
        # would look newer than its copy to `s3 sync` (on AWS too), so the files are a minute old.
        os.utime(src / name, (time.time() - 60, time.time() - 60))
    server.aws("s3", "sync", str(src), f"s3://{bucket}/tree")
    listing = server.aws("s3", "ls", "--recursive", f"s3://{bucket}/").stdout
    assert all(f"tree/{name}" in listing for name in files)
    again = server.aws("s3", "sync", str(src), f"s3://{bucket}/tree").stdout
    assert again.strip() == ""  # nothing changed: nothing copied
    back = tmp_path / "back"
    server.aws("s3", "sync", f"s3://{bucket}/tree", str(back))
    for name, data in files.items():
        assert (back / name).read_bytes() == data
    server.aws("s3", "cp", str(src / "a.txt"), f"s3://{bucket}/single.txt")
    server.aws("s3", "mv", f"s3://{bucket}/single.txt", f"s3://{bucket}/moved.txt")
    top = server.aws("s3", "ls", f"s3://{bucket}/").stdout
    assert "moved.txt" in top and "single.txt" not in top and "PRE tree/" in top
    server.aws("s3", "cp", f"s3://{bucket}/moved.txt", str(tmp_path / "moved.txt"))
    assert (tmp_path / "moved.txt").read_bytes() == b"alpha"
    server.aws("s3", "rm", "--recursive", f"s3://{bucket}/")
    assert server.aws("s3", "ls", f"s3://{bucket}/", check=False).stdout.strip() == ""
    server.aws("s3", "rb", f"s3://{bucket}")
    assert bucket not in server.aws("s3", "ls").stdout


def test_cli_s3api(server: MinicloudServer, tmp_path: Path) -> None:
    bucket = new_bucket(server)
    body = tmp_path / "body"
    body.write_bytes(b"s3api body")
    put = server.aws_json("s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", str(body),
                          "--metadata", "owner=me")
    assert put["ETag"] == f'"{hashlib.md5(b"s3api body").hexdigest()}"'
    head = server.aws_json("s3api", "head-object", "--bucket", bucket, "--key", "k")
    assert head["ContentLength"] == 10 and head["Metadata"] == {"owner": "me"}
    server.aws("s3api", "get-object", "--bucket", bucket, "--key", "k", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == b"s3api body"
    listed = server.aws_json("s3api", "list-objects-v2", "--bucket", bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["k"]
    missing = server.aws("s3api", "get-object", "--bucket", bucket, "--key", "nope", str(tmp_path / "x"),
                         check=False)
    assert missing.returncode != 0 and "NoSuchKey" in missing.stderr


def test_cli_presign_and_curl(server: MinicloudServer, tmp_path: Path) -> None:
    bucket = new_bucket(server)
    (tmp_path / "f").write_bytes(b"presigned by the CLI")
    server.aws("s3", "cp", str(tmp_path / "f"), f"s3://{bucket}/shared.txt")
    url = server.aws("s3", "presign", f"s3://{bucket}/shared.txt", "--expires-in", "300").stdout.strip()
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    got = subprocess.run([curl, "-sS", "-f", url], capture_output=True, timeout=30)
    assert got.returncode == 0 and got.stdout == b"presigned by the CLI"
    tampered = subprocess.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                               url.replace("Signature=", "Signature=AAAA")],
                              capture_output=True, timeout=30)
    assert tampered.stdout == b"403"
    s3 = server.client("s3")
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "curl.bin"}, ExpiresIn=300)
    (tmp_path / "up").write_bytes(os.urandom(3 * MiB))
    up = subprocess.run([curl, "-sS", "-f", "-T", str(tmp_path / "up"), put_url], capture_output=True, timeout=30)
    assert up.returncode == 0, up.stderr
    assert s3.get_object(Bucket=bucket, Key="curl.bin")["Body"].read() == (tmp_path / "up").read_bytes()


def _raw(server: MinicloudServer, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_bad_input_never_500(server: MinicloudServer) -> None:
    s3 = server.client("s3")
    bucket = new_bucket(server)
    with pytest.raises(ClientError) as err:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": []})
    # S3 says MalformedXML; the shared protocol validation answers first, for the missing member
    assert err.value.response["Error"]["Code"] in ("MalformedXML", "InvalidArgument")
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId="no-such-upload",
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]})
    assert err.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="k", UploadId="nope", PartNumber=1, Body=b"x")
    assert err.value.response["Error"]["Code"] == "NoSuchUpload"
    for method, path in (("GET", f"/{bucket}?list-type=2&max-keys=abc"), ("PUT", f"/{bucket}?versioning"),
                         ("PUT", f"/{bucket}?tagging"), ("POST", f"/{bucket}?delete"), ("GET", "/%ff%fe")):
        code, _ = _raw(server, method, path, b"<not xml")
        assert 400 <= code < 500, (method, path, code)


def _upload_worker(server: MinicloudServer, bucket: str, index: int, acked: dict[str, str],
                   lock: threading.Lock) -> None:
    s3 = server.client("s3")
    for round_ in range(1000):
        key = f"obj-{index}-{round_}"
        data = os.urandom(64 * 1024 + index * 977 + round_)
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        except Exception:
            return
        with lock:
            acked[key] = hashlib.sha256(data).hexdigest()


def test_kill_9_during_concurrent_uploads(fresh_server: MinicloudServer) -> None:
    server = fresh_server.start()
    bucket = new_bucket(server)
    acked: dict[str, str] = {}
    lock = threading.Lock()
    threads = [threading.Thread(target=_upload_worker, args=(server, bucket, i, acked, lock)) for i in range(12)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 40 and time.monotonic() < deadline:  # kill mid-stream, after some acks
        time.sleep(0.05)
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    server.process = None
    for t in threads:
        t.join(30)
    assert len(acked) > 20, "too few uploads were acknowledged before the kill"
    server.start()
    s3 = server.client("s3")
    listed = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in page.get("Contents", [])}
    assert set(acked) <= listed
    for key in listed:  # every visible object reads back whole (reads verify digests)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key in acked:
            assert hashlib.sha256(body).hexdigest() == acked[key], key
    leftovers = [p for p in (server.data_dir / "s3").glob("*/ingest/s3-*")]
    assert leftovers == [], "unfinished uploads were not cleaned up at restart"


def _rclone_env(server: MinicloudServer, tmp_path: Path) -> dict[str, str]:
    assert server.root is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(RCLONE_CONFIG=str(tmp_path / "rclone.conf"), RCLONE_CONFIG_MC_TYPE="s3",
               RCLONE_CONFIG_MC_PROVIDER="Other", RCLONE_CONFIG_MC_ENDPOINT=server.endpoint,
               RCLONE_CONFIG_MC_ACCESS_KEY_ID=server.root.access_key_id,
               RCLONE_CONFIG_MC_SECRET_ACCESS_KEY=server.root.secret_access_key,
               RCLONE_CONFIG_MC_REGION="us-east-1", RCLONE_CONFIG_MC_FORCE_PATH_STYLE="true")
    return env


def test_rclone(server: MinicloudServer, tmp_path: Path) -> None:
    rclone = shutil.which("rclone")
    if rclone is None:
        pytest.skip("rclone is not installed (scripts/install.sh installs it)")
    env = _rclone_env(server, tmp_path)
    bucket = f"rclone-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "small.txt").write_bytes(b"rclone small")
    (src / "d" / "big.bin").write_bytes(os.urandom(30 * MiB))  # over rclone's multipart cutoff

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([rclone, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result

    run("mkdir", f"mc:{bucket}")
    run("copy", str(src), f"mc:{bucket}/tree")
    run("check", str(src), f"mc:{bucket}/tree")  # sizes and hashes (MD5 ETags, multipart metadata)
    listed = run("ls", f"mc:{bucket}").stdout
    assert "tree/small.txt" in listed and "tree/d/big.bin" in listed
    run("copy", f"mc:{bucket}/tree", str(tmp_path / "back"))
    assert (tmp_path / "back" / "d" / "big.bin").read_bytes() == (src / "d" / "big.bin").read_bytes()
    run("purge", f"mc:{bucket}")
    assert bucket not in run("lsd", "mc:").stdout


def test_s3cmd(server: MinicloudServer, tmp_path: Path) -> None:
    s3cmd = shutil.which("s3cmd")
    if s3cmd is None:
        pytest.skip("s3cmd is not installed (scripts/install.sh installs it)")
    assert server.root is not None
    config = tmp_path / "s3cfg"
    config.write_text(f"""[default]
access_key = {server.root.access_key_id}
secret_key = {server.root.secret_access_key}
host_base = 127.0.0.1:{server.port}
host_bucket = 127.0.0.1:{server.port}
bucket_location = us-east-1
use_https = False
signature_v2 = False
""")
    bucket = f"s3cmd-{uuid.uuid4().hex[:8]}"
    data = os.urandom(20 * MiB)  # multipart (s3cmd's chunks are 15 MiB)
    (tmp_path / "up.bin").write_bytes(data)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([s3cmd, "-c", str(config), *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    run("mb", f"s3://{bucket}")
    run("put", str(tmp_path / "up.bin"), f"s3://{bucket}/up.bin")
    assert "up.bin" in run("ls", f"s3://{bucket}").stdout
    run("get", f"s3://{bucket}/up.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == data
    run("del", f"s3://{bucket}/up.bin")
    run("rb", f"s3://{bucket}")
