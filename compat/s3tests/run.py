"""Run the ceph/s3-tests functional suite against a fresh ``minicloud up`` and summarise the result.

The suite itself is never committed: its tree is exported from a local snapshot of the public
repository (``git archive`` of a bare git dir), its requirements go into a cached virtualenv under
``compat/.venvs``, and the results land in ``compat/results`` (both gitignored).

Usage (from the repository root, with the project's venv)::

    .venv/bin/python compat/s3tests/run.py                 # the issue's selection, serial
    .venv/bin/python compat/s3tests/run.py -k test_bucket_list_empty   # a few tests
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from minicloud.services.s3.names import canonical_id  # noqa: E402
from tests.support.server import Keys, MinicloudServer  # noqa: E402

COMPAT = REPO / "compat"
DEFAULT_MIRROR = Path("/work/.mirror/ceph+s3-tests/repo")
FILES = ["s3tests/functional/test_s3.py", "s3tests/functional/test_headers.py"]

# The fair filter for a single-region S3: everything in test_s3.py and test_headers.py except
# IAM/STS, RGW-only bucket logging, notifications (SNS), S3 Select and storage-class transitions
# (including RGW's cloud tiering and restore). Markers that test_s3.py/test_headers.py do not use at
# a given snapshot are harmless here and keep the expression valid for newer snapshots.
EXCLUDED_MARKERS = [
    # IAM / STS
    "iam_account", "iam_user", "iam_role", "iam_tenant", "iam_cross_account", "user_policy", "role_policy",
    "group", "group_policy", "session_policy", "abac_test", "test_of_sts", "webidentity_test",
    "token_claims_trust_policy_test", "token_principal_tag_role_policy_test",
    "token_request_tag_trust_policy_test", "token_resource_tags_test", "token_role_tags_test",
    "token_tag_keys_test",
    # RGW-only bucket logging
    "bucket_logging", "bucket_logging_cleanup", "fails_without_logging_rollover",
    # notifications, S3 Select
    "sns", "s3select",
    # storage-class transitions (and RGW's cloud tier behind them)
    "lifecycle_transition", "cloud_transition", "cloud_restore", "storage_class",
]
MARKER_EXPRESSION = "not (" + " or ".join(EXCLUDED_MARKERS) + ")"


@dataclass
class Accounts:
    main_account: str
    main_email: str
    main: Keys
    alt_account: str
    alt: Keys
    tenant_account: str
    tenant: Keys
    kms_keys: list[str] = field(default_factory=list)


def export_suite(mirror: Path, rev: str) -> tuple[Path, str]:
    commit = subprocess.run(["git", "--git-dir", str(mirror), "rev-parse", rev], check=True,
                            capture_output=True, text=True).stdout.strip()
    target = COMPAT / ".work" / f"s3-tests-{commit[:12]}"
    if not (target / "pytest.ini").exists():
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as archive:
            subprocess.run(["git", "--git-dir", str(mirror), "archive", commit], check=True, stdout=archive)
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(target, filter="data")
    return target, commit


def suite_venv(suite: Path) -> Path:
    requirements = (suite / "requirements.txt").read_bytes()
    venv = COMPAT / ".venvs" / f"s3tests-{hashlib.sha256(requirements).hexdigest()[:12]}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-warn-script-location",
                        "-r", str(suite / "requirements.txt"), "pytest-timeout"], check=True)
        (venv / ".complete").write_text("ok\n")
    return python


def admin_of_new_account(srv: MinicloudServer, label: str) -> tuple[str, Keys]:
    """A new account (Organizations) with an IAM user holding AdministratorAccess, and its keys."""
    status = srv.client("organizations").create_account(
        Email=f"{label}@example.com", AccountName=label)["CreateAccountStatus"]
    account_id = status["AccountId"]
    iam = srv.client("iam")
    boot = f"boot-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=boot)
    iam.attach_user_policy(UserName=boot, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=boot)["AccessKey"]
    creds = srv.client("sts", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"])).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="boot",
    )["Credentials"]
    other = srv.client("iam", keys=Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]))
    other.create_user(UserName=label)
    other.attach_user_policy(UserName=label, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    admin = other.create_access_key(UserName=label)["AccessKey"]
    return account_id, Keys(admin["AccessKeyId"], admin["SecretAccessKey"])


def kms_keys(srv: MinicloudServer) -> list[str]:
    """Two symmetric KMS keys of the main account when minicloud has KMS (best effort)."""
    try:
        kms = srv.client("kms")
        # the key ARN: what S3 answers in x-amz-server-side-encryption-aws-kms-key-id, which the suite compares
        return [kms.create_key(Description=f"s3-tests {n}")["KeyMetadata"]["Arn"] for n in (1, 2)]
    except Exception as exc:  # KMS is optional: the SSE-KMS tests then fail, explained
        print(f"no KMS keys ({type(exc).__name__}: {exc}); the SSE-KMS tests will fail", file=sys.stderr)
        return []


def make_accounts(srv: MinicloudServer) -> Accounts:
    assert srv.root is not None
    alt_account, alt = admin_of_new_account(srv, "alt")
    tenant_account, tenant = admin_of_new_account(srv, "tenant")
    main_email = srv.client("organizations").describe_account(AccountId=srv.account_id)["Account"]["Email"]
    return Accounts(srv.account_id, main_email, srv.root, alt_account, alt, tenant_account, tenant, kms_keys(srv))


def config_text(srv: MinicloudServer, acc: Accounts) -> str:
    kms = "".join(f"kms_keyid{'' if i == 0 else i + 1} = {key}\n" for i, key in enumerate(acc.kms_keys))
    return f"""[DEFAULT]
host = 127.0.0.1
port = {srv.port}
is_secure = False
ssl_verify = False

[fixtures]
bucket prefix = s3t-{{random}}-
iam name prefix = s3-tests-
iam path prefix = /s3-tests/

[s3 main]
display_name = {acc.main_account}
user_id = {canonical_id(acc.main_account)}
email = {acc.main_email}
api_name = us-east-1
lc_debug_interval = 10
access_key = {acc.main.access_key_id}
secret_key = {acc.main.secret_access_key}
{kms}
[s3 alt]
display_name = {acc.alt_account}
user_id = {canonical_id(acc.alt_account)}
email = alt@example.com
access_key = {acc.alt.access_key_id}
secret_key = {acc.alt.secret_access_key}

[s3 tenant]
display_name = {acc.tenant_account}
user_id = {canonical_id(acc.tenant_account)}
email = tenant@example.com
tenant = testx
access_key = {acc.tenant.access_key_id}
secret_key = {acc.tenant.secret_access_key}

[iam]
display_name = iam
user_id = {canonical_id(acc.main_account)}
email = s3@example.com
access_key = {acc.main.access_key_id}
secret_key = {acc.main.secret_access_key}

[iam root]
user_id = {acc.main_account}
email = account1@example.com
access_key = {acc.main.access_key_id}
secret_key = {acc.main.secret_access_key}

[iam alt root]
user_id = {acc.alt_account}
email = account2@example.com
access_key = {acc.alt.access_key_id}
secret_key = {acc.alt.secret_access_key}
"""


def summarise(junit: Path, out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    root = ET.parse(junit).getroot()
    outcomes: dict[str, list[dict[str, str]]] = {"passed": [], "failed": [], "error": [], "skipped": []}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        problem = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        if problem is None:
            outcomes["passed"].append({"test": name})
            continue
        kind = {"failure": "failed", "error": "error", "skipped": "skipped"}[problem.tag]
        message = (problem.get("message") or "").strip().splitlines()
        outcomes[kind].append({"test": name, "message": message[0][:300] if message else ""})
    summary = {**meta, **{k: len(v) for k, v in outcomes.items()}, "failures": outcomes["failed"] + outcomes["error"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = [f"{k}: {summary[k]}" for k in ("commit", "selection", "passed", "failed", "error", "skipped")]
    lines += ["", "failures:"] + [f"{f['test']}  {f['message']}" for f in summary["failures"]]
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="bare git dir of ceph/s3-tests")
    parser.add_argument("--rev", default="HEAD", help="commit of the suite to run")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression (a subset of the selection)")
    parser.add_argument("--name", default="", help="results sub-directory (default: a timestamp)")
    parser.add_argument("--timeout", type=int, default=300, help="per-test timeout, seconds")
    parser.add_argument("--collect-only", action="store_true", help="only count the selection")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()

    suite, commit = export_suite(args.mirror, args.rev)
    python = suite_venv(suite)
    out = COMPAT / "results" / (args.name or time.strftime("%Y%m%dT%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    srv = MinicloudServer(out / "data", env={"MINICLOUD_LIFECYCLE_DAY_SECONDS": "10"})
    srv.start(timeout=120)
    try:
        (out / "pid").write_text(f"{srv.process.pid if srv.process else ''}\n")
        conf = out / "s3tests.conf"
        conf.write_text(config_text(srv, make_accounts(srv)))
        cmd = [str(python), "-m", "pytest", *FILES, "-m", MARKER_EXPRESSION, "-p", "no:cacheprovider",
               "-v", "-rfE", f"--timeout={args.timeout}", f"--junitxml={out / 'junit.xml'}", *args.pytest_args]
        if args.keyword:
            cmd += ["-k", args.keyword]
        if args.collect_only:
            cmd.append("--collect-only")
        print("running:", " ".join(cmd[1:]), flush=True)
        with open(out / "pytest.log", "wb") as log:
            code = subprocess.run(cmd, cwd=suite, env={**os.environ, "S3TEST_CONF": str(conf)},
                                  stdout=log, stderr=subprocess.STDOUT).returncode
    finally:
        srv.stop()
    print((out / "pytest.log").read_text(errors="replace").splitlines()[-1:])
    if args.collect_only or not (out / "junit.xml").exists():
        return code
    meta = {"commit": commit, "selection": MARKER_EXPRESSION + (f" and -k {args.keyword}" if args.keyword else "")}
    summary = summarise(out / "junit.xml", out, meta)
    print(f"passed {summary['passed']}, failed {summary['failed']}, error {summary['error']}, "
          f"skipped {summary['skipped']}; see {out / 'summary.txt'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
