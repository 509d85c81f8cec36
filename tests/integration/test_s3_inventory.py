"""S3 Inventory against a ``minicloud up`` whose lifecycle "day" is one second (so a Daily report
comes every second) and whose data files hold three rows: the configuration API with S3's errors
(boto3 and the AWS CLI), and reports delivered for real, parsed back (manifest, checksum, gzip CSV)
and checked against the objects."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import new_bucket
from tests.support.polling import eventually
from tests.support.server import Keys, MinicloudServer


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    server = MinicloudServer(Path(tmp_path_factory.mktemp("inventory")), env={
        "MINICLOUD_LIFECYCLE_DAY_SECONDS": "1", "MINICLOUD_S3_INVENTORY_ROWS_PER_FILE": "3",
        "MINICLOUD_ENGINE": "false"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(srv: MinicloudServer) -> Any:
    return srv.client("s3")


def allow_inventory(s3: Any, destination: str, source: str) -> None:
    """The destination bucket policy S3's documentation gives for inventory reports."""
    s3.put_bucket_policy(Bucket=destination, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{destination}/*",
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source}"},
                      "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}]}))


def configuration(config_id: str, destination: str, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Id": config_id, "IsEnabled": True, "IncludedObjectVersions": "Current",
        "Destination": {"S3BucketDestination": {"Bucket": f"arn:aws:s3:::{destination}", "Format": "CSV"}},
        "Schedule": {"Frequency": "Daily"}}
    config.update(changes)
    return config


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def status(err: pytest.ExceptionInfo[ClientError]) -> int:
    return int(err.value.response["ResponseMetadata"]["HTTPStatusCode"])




def manifests(s3: Any, destination: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=destination).get("Contents", [])
    return sorted(o["Key"] for o in listed if o["Key"].endswith("/manifest.json"))


def read(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def report(s3: Any, destination: str) -> tuple[str, dict[str, Any], list[list[str]]]:
    """The first manifest delivered (its key, parsed) and the rows of its data files, each checked
    against the manifest's size and MD5 and the manifest against manifest.checksum."""
    key = eventually(lambda: manifests(s3, destination))[0]
    raw = read(s3, destination, key)
    assert read(s3, destination, key.replace("manifest.json", "manifest.checksum")).decode() == \
        hashlib.md5(raw).hexdigest()
    manifest = json.loads(raw)
    rows: list[list[str]] = []
    for entry in manifest["files"]:
        data = read(s3, destination, entry["key"])
        assert len(data) == entry["size"] and hashlib.md5(data).hexdigest() == entry["MD5checksum"]
        rows += list(csv.reader(io.StringIO(gzip.decompress(data).decode())))
    return key, manifest, rows


# -- the configuration API ----------------------------------------------------------------------------

def test_configuration_round_trip(s3: Any) -> None:
    source, destination = new_bucket(s3, "inv-src"), new_bucket(s3, "inv-dst")
    config = configuration("report-1", destination, IsEnabled=False, Filter={"Prefix": "logs/"},
                           OptionalFields=["Size", "ETag", "ObjectOwner"], Schedule={"Frequency": "Weekly"})
    config["Destination"]["S3BucketDestination"].update(Prefix="inv", AccountId="000000000000",
                                                         Encryption={"SSES3": {}})
    s3.put_bucket_inventory_configuration(Bucket=source, Id="report-1", InventoryConfiguration=config)
    got = s3.get_bucket_inventory_configuration(Bucket=source, Id="report-1")["InventoryConfiguration"]
    assert got == config
    listed = s3.list_bucket_inventory_configurations(Bucket=source)
    assert listed["InventoryConfigurationList"] == [config] and listed["IsTruncated"] is False
    assert "NextContinuationToken" not in listed
    s3.delete_bucket_inventory_configuration(Bucket=source, Id="report-1")
    for call in (s3.get_bucket_inventory_configuration, s3.delete_bucket_inventory_configuration):
        with pytest.raises(ClientError) as err:
            call(Bucket=source, Id="report-1")
        assert (code(err), status(err)) == ("NoSuchConfiguration", 404)
    assert s3.list_bucket_inventory_configurations(Bucket=source).get("InventoryConfigurationList") is None


def test_list_pages_of_100_and_the_1000_limit(s3: Any) -> None:
    source, destination = new_bucket(s3, "inv-many"), new_bucket(s3, "inv-dst")
    for n in range(1000):
        config_id = f"c{n:04d}"
        s3.put_bucket_inventory_configuration(Bucket=source, Id=config_id, InventoryConfiguration=configuration(
            config_id, destination, IsEnabled=False))
    seen: list[str] = []
    token = None
    while True:
        page = s3.list_bucket_inventory_configurations(Bucket=source, **({"ContinuationToken": token} if token
                                                                          else {}))
        ids = [c["Id"] for c in page["InventoryConfigurationList"]]
        seen += ids
        if not page["IsTruncated"]:
            break
        assert len(ids) == 100
        token = page["NextContinuationToken"]
    assert seen == [f"c{n:04d}" for n in range(1000)]
    with pytest.raises(ClientError) as err:
        s3.put_bucket_inventory_configuration(Bucket=source, Id="extra", InventoryConfiguration=configuration(
            "extra", destination))
    assert code(err) == "TooManyConfigurations"
    s3.put_bucket_inventory_configuration(Bucket=source, Id="c0000", InventoryConfiguration=configuration(
        "c0000", destination, IsEnabled=False, Schedule={"Frequency": "Weekly"}))  # (a replacement is no new one)


@pytest.mark.parametrize(("change", "expected"), [
    ({"Schedule": {"Frequency": "Hourly"}}, "MalformedXML"),
    ({"IncludedObjectVersions": "Some"}, "MalformedXML"),
    ({"OptionalFields": ["Size", "Colour"]}, "MalformedXML"),
    ({"Destination": {"S3BucketDestination": {"Bucket": "arn:aws:s3:::x", "Format": "XML"}}}, "MalformedXML"),
    ({"Destination": {"S3BucketDestination": {"Bucket": "not-an-arn", "Format": "CSV"}}},
     "InvalidS3DestinationBucket"),
    ({"Id": "other"}, "IdMismatch"),
    ({"Destination": {"S3BucketDestination": {"Bucket": "arn:aws:s3:::x", "Format": "ORC"}}}, "NotImplemented"),
    ({"Destination": {"S3BucketDestination": {"Bucket": "arn:aws:s3:::x", "Format": "Parquet"}}},
     "NotImplemented"),
    ({"Destination": {"S3BucketDestination": {"Bucket": "arn:aws:s3:::x", "Format": "CSV",
                                              "Encryption": {"SSEKMS": {"KeyId": "alias/x"}}}}}, "NotImplemented"),
    ({"OptionalFields": ["LifecycleExpirationDate"]}, "NotImplemented"),
])
def test_bad_configurations_get_s3s_errors(srv: MinicloudServer, s3: Any, change: dict[str, Any],
                                           expected: str) -> None:
    source = new_bucket(s3, "inv-bad")
    with pytest.raises(ClientError) as err:
        s3.put_bucket_inventory_configuration(Bucket=source, Id="r", InventoryConfiguration=configuration(
            "r", "dest", **change))
    assert code(err) == expected
    assert status(err) == (501 if expected == "NotImplemented" else 400)


def test_missing_elements_are_malformed_xml(srv: MinicloudServer, s3: Any) -> None:
    raw = srv.client("s3", parameter_validation=False)  # (boto3 would refuse to send these)
    source = new_bucket(s3, "inv-missing")
    for missing in ("IsEnabled", "Schedule", "Destination", "IncludedObjectVersions"):
        config = configuration("r", "dest")
        del config[missing]
        with pytest.raises(ClientError) as err:
            raw.put_bucket_inventory_configuration(Bucket=source, Id="r", InventoryConfiguration=config)
        assert code(err) == "MalformedXML", missing


def test_permissions_are_s3s(srv: MinicloudServer, s3: Any) -> None:
    """Put and Delete need s3:PutInventoryConfiguration, Get and List s3:GetInventoryConfiguration."""
    iam = srv.client("iam")
    name = f"inv-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="get", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetInventoryConfiguration",
                                                "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = srv.client("s3", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    source = new_bucket(s3, "inv-perm")
    s3.put_bucket_inventory_configuration(Bucket=source, Id="r", InventoryConfiguration=configuration(
        "r", "dest", IsEnabled=False))
    assert user.get_bucket_inventory_configuration(Bucket=source, Id="r")["InventoryConfiguration"]["Id"] == "r"
    assert len(user.list_bucket_inventory_configurations(Bucket=source)["InventoryConfigurationList"]) == 1
    with pytest.raises(ClientError) as err:
        user.delete_bucket_inventory_configuration(Bucket=source, Id="r")
    assert code(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        user.put_bucket_inventory_configuration(Bucket=source, Id="r", InventoryConfiguration=configuration("r", "d"))
    assert code(err) == "AccessDenied"


def test_the_aws_cli_puts_a_configuration(srv: MinicloudServer, s3: Any, tmp_path: Path) -> None:
    source, destination = new_bucket(s3, "inv-cli"), new_bucket(s3, "inv-dst")
    config = configuration("cli", destination, IsEnabled=False, OptionalFields=["Size"])
    document = tmp_path / "inventory.json"
    document.write_text(json.dumps(config))
    srv.aws("s3api", "put-bucket-inventory-configuration", "--bucket", source, "--id", "cli",
            "--inventory-configuration", f"file://{document}")
    assert srv.aws_json("s3api", "get-bucket-inventory-configuration", "--bucket", source, "--id", "cli") == {
        "InventoryConfiguration": config}


# -- reports -------------------------------------------------------------------------------------------

def test_current_report_is_delivered_as_s3_writes_it(s3: Any) -> None:
    source, destination = new_bucket(s3, "inv-src"), new_bucket(s3, "inv-dst")
    keys = ["logs/a.txt", "logs/b c.txt", "logs/d/e+f", "logs/g", "logs/ü"]
    for n, key in enumerate(keys):
        s3.put_object(Bucket=source, Key=key, Body=b"x" * (n + 1), ChecksumAlgorithm="CRC32")
    s3.put_object(Bucket=source, Key="other/skip", Body=b"no")
    allow_inventory(s3, destination, source)
    fields = ["Size", "LastModifiedDate", "StorageClass", "ETag", "IsMultipartUploaded", "EncryptionStatus",
              "ChecksumAlgorithm", "ObjectOwner", "ReplicationStatus"]
    config = configuration("daily", destination, Filter={"Prefix": "logs/"}, OptionalFields=fields)
    config["Destination"]["S3BucketDestination"]["Prefix"] = "reports"
    s3.put_bucket_inventory_configuration(Bucket=source, Id="daily", InventoryConfiguration=config)

    key, manifest, rows = report(s3, destination)
    assert key.startswith(f"reports/{source}/daily/") and key.endswith("Z/manifest.json")
    stamp = key.split("/")[3]
    assert len(stamp) == len("2016-11-06T21-32Z") and stamp[10] == "T"
    assert manifest["sourceBucket"] == source and manifest["destinationBucket"] == f"arn:aws:s3:::{destination}"
    assert manifest["version"] == "2016-11-30" and manifest["fileFormat"] == "CSV"
    assert manifest["creationTimestamp"].isdigit()
    assert manifest["fileSchema"] == ("Bucket, Key, Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded, "
                                      "ReplicationStatus, EncryptionStatus, ChecksumAlgorithm, ObjectOwner")
    assert len(manifest["files"]) == 2  # (three rows a file)
    assert all(f["key"].startswith(f"reports/{source}/daily/data/") and f["key"].endswith(".csv.gz")
               for f in manifest["files"])
    by_key = {unquote(row[1]): row for row in rows}
    assert sorted(by_key) == sorted(keys)
    owner = s3.list_objects_v2(Bucket=source, FetchOwner=True)["Contents"][0]["Owner"]["ID"]
    for key_name in keys:
        head = s3.head_object(Bucket=source, Key=key_name)
        bucket, _, size, modified, etag, storage_class, multipart, replication, sse, checksum, row_owner = \
            by_key[key_name]
        assert bucket == source and int(size) == head["ContentLength"]
        assert modified == head["LastModified"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert etag == head["ETag"].strip('"') and storage_class == "STANDARD" and multipart == "false"
        assert (replication, sse, checksum, row_owner) == ("", "SSE-S3", "CRC32", owner)
    symlinks = s3.list_objects_v2(Bucket=destination, Prefix=f"reports/{source}/daily/hive/")["Contents"]
    listed = read(s3, destination, symlinks[0]["Key"]).decode().split()
    assert sorted(listed) == sorted(f"s3://{destination}/{f['key']}" for f in manifest["files"])


def test_all_versions_report_lists_versions_and_delete_markers(s3: Any) -> None:
    source, destination = new_bucket(s3, "inv-ver"), new_bucket(s3, "inv-dst")
    s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=source, Key="k", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket=source, Key="k", Body=b"22")["VersionId"]
    marker = s3.delete_object(Bucket=source, Key="k")["VersionId"]
    allow_inventory(s3, destination, source)
    s3.put_bucket_inventory_configuration(Bucket=source, Id="all", InventoryConfiguration=configuration(
        "all", destination, IncludedObjectVersions="All", OptionalFields=["Size"]))
    _, manifest, rows = report(s3, destination)
    assert manifest["fileSchema"] == "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size"
    assert sorted(rows) == sorted([[source, "k", marker, "true", "true", ""],
                                   [source, "k", second, "false", "false", "2"],
                                   [source, "k", first, "false", "false", "1"]])


def test_no_report_without_the_destinations_policy(s3: Any) -> None:
    source, destination = new_bucket(s3, "inv-nopol"), new_bucket(s3, "inv-dst")
    s3.put_object(Bucket=source, Key="k", Body=b"x")
    s3.put_bucket_inventory_configuration(Bucket=source, Id="r", InventoryConfiguration=configuration(
        "r", destination))
    disabled = new_bucket(s3, "inv-off")
    allow_inventory(s3, destination, disabled)
    s3.put_bucket_inventory_configuration(Bucket=disabled, Id="r", InventoryConfiguration=configuration(
        "r", destination, IsEnabled=False))
    time.sleep(3)  # (three schedule periods: the controller has looked several times)
    assert s3.list_objects_v2(Bucket=destination).get("KeyCount") == 0
    allow_inventory(s3, destination, source)  # (then the next period delivers)
    _, manifest, rows = report(s3, destination)
    assert manifest["sourceBucket"] == source and rows == [[source, "k"]]
