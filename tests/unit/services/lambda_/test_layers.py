"""Layers' pure parts: ARNs, filters, documents, policy statements, the 250 MB rule, how layer zips
are kept (unpacked once, lazily) and merged in order into one /opt directory, and the Python
runtime's search path."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import zipfile
from pathlib import Path

import pytest

from minicloud.services.lambda_ import layer_model
from minicloud.services.lambda_.code import CodeStore
from minicloud.services.lambda_.errors import InvalidParameterValueException, RequestEntityTooLargeException
from minicloud.services.lambda_.execution.spec import RUNTIME_CLIENTS, EnvironmentSpec
from minicloud.services.lambda_.layer_model import LayerRef, LayerVersionRow

ACCOUNT = "123456789012"


def make_zip(files: dict[str, str], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100644 << 16
            archive.writestr(info, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
    return buffer.getvalue()


# -- ARNs ---------------------------------------------------------------------------------------------
def test_a_layer_name_or_arn_names_a_layer() -> None:
    assert layer_model.parse_layer_name("libs", ACCOUNT, "us-east-1") == LayerRef(ACCOUNT, "us-east-1", "libs")
    other = layer_model.parse_layer_name("arn:aws:lambda:eu-west-1:210987654321:layer:x", ACCOUNT, "us-east-1")
    assert other == LayerRef("210987654321", "eu-west-1", "x")
    assert other.layer_arn == "arn:aws:lambda:eu-west-1:210987654321:layer:x"
    assert other.version_arn(3) == "arn:aws:lambda:eu-west-1:210987654321:layer:x:3"


def test_only_a_version_arn_names_a_version() -> None:
    ref = layer_model.parse_version_arn(f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:libs:12")
    assert ref == LayerRef(ACCOUNT, "us-east-1", "libs", 12)
    assert ref.version_arn() == f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:libs:12"
    assert layer_model.parse_version_arn(f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:libs") is None
    assert layer_model.parse_version_arn("libs:1") is None


# -- documents ------------------------------------------------------------------------------------------
def _row(config: dict[str, object], policy: dict[str, object] | None = None) -> LayerVersionRow:
    return LayerVersionRow("id", LayerRef(ACCOUNT, "us-east-1", "libs", 2), dict(config), "ab" * 32, 10, policy)


def test_filters_match_what_a_version_declares() -> None:
    config = {"CompatibleRuntimes": ["python3.11"], "CompatibleArchitectures": ["x86_64"]}
    assert layer_model.matches(config, None, None)
    assert layer_model.matches(config, "python3.11", "x86_64")
    assert not layer_model.matches(config, "nodejs18.x", None)
    assert not layer_model.matches(config, None, "arm64")
    assert not layer_model.matches({}, "python3.11", None)  # declaring nothing matches no filter


def test_a_version_document_has_aws_members_only_when_set() -> None:
    row = _row({"Description": "", "CreatedDate": "2024-01-02T03:04:05.678+0000", "CodeSha256": "c2hh",
                "CodeSize": 99, "LicenseInfo": "MIT"})
    doc = layer_model.version_document(row, "http://x/zip")
    assert doc == {"LayerVersionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:libs:2", "Version": 2,
                   "Description": "", "CreatedDate": "2024-01-02T03:04:05.678+0000", "LicenseInfo": "MIT",
                   "LayerArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:libs",
                   "Content": {"Location": "http://x/zip", "CodeSha256": "c2hh", "CodeSize": 99}}


def test_policy_statements_for_an_account_everyone_or_an_organization() -> None:
    resource = f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:libs:1"
    base = {"StatementId": "s", "Action": "lambda:GetLayerVersion"}
    account = layer_model.statement_for({**base, "Principal": "210987654321"}, resource)
    assert account == {"Sid": "s", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                       "Action": "lambda:GetLayerVersion", "Resource": resource}
    org = layer_model.statement_for({**base, "Principal": "*", "OrganizationId": "o-abcdefghij"}, resource)
    assert org["Principal"] == "*"
    assert org["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    assert _row({}, None).policy_document() is None
    assert '"Sid": "s"' in (_row({}, {"Statement": [account], "_RevisionId": "r"}).policy_document() or "")
    assert "_RevisionId" not in (_row({}, {"Statement": [account], "_RevisionId": "r"}).policy_document() or "")


def test_function_code_and_layers_share_250_mb() -> None:
    limit = 262144000
    layer_model.check_combined_size(limit - 10, [{"UnzippedSize": 10}])
    with pytest.raises(InvalidParameterValueException) as caught:
        layer_model.check_combined_size(limit - 10, [{"UnzippedSize": 6}, {"UnzippedSize": 5}])
    assert caught.value.message == ("Function code combined with layers exceeds the maximum allowed size of "
                                    f"262144000 bytes. The actual size is {limit + 1} bytes.")


# -- the layer store and /opt ------------------------------------------------------------------------------
def test_a_layer_zip_is_kept_unextracted_until_used(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    stored = store.put(make_zip({"python/a.py": "A = 1\n"}), "PublishLayerVersion", unpack=False)
    assert stored.unzipped_size == len("A = 1\n")
    assert not store.task_dir(stored.sha256_hex).exists()
    assert store.unzipped_size(stored.sha256_hex) == 6
    assert store.merged([stored.sha256_hex]) == store.task_dir(stored.sha256_hex)  # one layer: itself
    assert (store.task_dir(stored.sha256_hex) / "python" / "a.py").read_text() == "A = 1\n"


def test_an_oversized_layer_names_its_operation(tmp_path: Path) -> None:
    with pytest.raises(RequestEntityTooLargeException, match="for the PublishLayerVersion operation"):
        CodeStore(tmp_path).put(b"x" * (50 * 1024 * 1024 + 1), "PublishLayerVersion", unpack=False)


def test_later_layers_replace_earlier_ones_files(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    first = store.put(make_zip({"python/shared.py": "first", "python/only_first.py": "1", "data/dir/x": "a",
                                "conf": "first"}), unpack=False).sha256_hex
    second = store.put(make_zip({"python/shared.py": "second", "data/dir": "now a file"},
                                links={"conf": "python/shared.py"}), unpack=False).sha256_hex
    opt = store.merged([first, second])
    assert (opt / "python" / "shared.py").read_text() == "second"
    assert (opt / "python" / "only_first.py").read_text() == "1"
    assert (opt / "data" / "dir").read_text() == "now a file"  # a file in place of a directory
    assert os.readlink(opt / "conf") == "python/shared.py"
    # hard links to the unpacked layers, not copies; and made once
    assert os.stat(opt / "python" / "only_first.py").st_ino == \
        os.stat(store.task_dir(first) / "python" / "only_first.py").st_ino
    assert store.merged([first, second]) == opt
    reverse = store.merged([second, first])
    assert reverse != opt and (reverse / "python" / "shared.py").read_text() == "first"
    assert (reverse / "data" / "dir" / "x").read_text() == "a"
    assert (store.task_dir(first) / "python" / "shared.py").read_text() == "first"  # layers untouched
    store.discard(second)
    assert not opt.exists() and not reverse.exists() and store.task_dir(first).is_dir()


# -- runtimes ---------------------------------------------------------------------------------------------
def test_a_custom_runtime_may_come_from_a_layer() -> None:
    spec = EnvironmentSpec(pool_key="k", account_id=ACCOUNT, region="us-east-1", function_name="f",
                           function_arn="arn", version="$LATEST", runtime="provided.al2023", handler="h", image="i",
                           code_dir="/x", memory_mb=128, timeout=3, role_arn="r", bootstrap="/opt/bootstrap")
    assert spec.process() == (["/opt/bootstrap"], [])


def test_the_python_runtime_searches_the_task_then_the_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = importlib.util.spec_from_file_location("lambda_bootstrap", RUNTIME_CLIENTS / "bootstrap.py")
    assert loaded is not None and loaded.loader is not None
    bootstrap = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(bootstrap)
    monkeypatch.setattr(sys, "path", ["/usr/lib/python3"])
    bootstrap.set_sys_path("/var/task")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert sys.path == ["/var/task", f"/opt/python/lib/python{version}/site-packages", "/opt/python",
                        "/usr/lib/python3"]
