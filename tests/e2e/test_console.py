"""The management console in Chromium (Playwright) against a real ``minicloud up``: sign-in, S3
(buckets, drag-and-drop upload with progress, byte-identical download, presigned links), IAM
(console users, the policy editor), a user without permission, live lists, sign-out, CSRF."""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect

from tests.e2e.conftest import console, sign_in_root, sign_in_user
from tests.e2e.images import push_image
from tests.support.server import MinicloudServer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def bucket_names(server: MinicloudServer) -> list[str]:
    return [b["Name"] for b in server.client("s3").list_buckets()["Buckets"]]


def test_sign_in_as_root_shows_health_and_counts(page: Page, server: MinicloudServer, artefacts: Path) -> None:
    page.goto(console(server, "/s3/buckets"))
    expect(page).to_have_url(re.compile(r"/signin\?next="))  # a protected page asks to sign in first
    sign_in_root(page, server)
    expect(page.get_by_role("heading", name="Console home")).to_be_visible()
    expect(page.locator(".tile", has_text="s3")).to_contain_text("running")
    expect(page.locator(".tile", has_text="iam")).to_contain_text("running")
    expect(page.get_by_role("cell", name="S3 buckets")).to_be_visible()
    expect(page.get_by_label("Region")).to_have_value("us-east-1")
    # A refresh of the live region keeps what the user opened open.
    page.locator("summary", has_text="Controllers").click()
    page.locator("#controllers").evaluate("table => table.closest('details').dataset.old = '1'")
    page.locator("h1").click()  # the focus leaves the live region, which may now refresh
    page.evaluate("document.querySelector('[data-live]').dispatchEvent(new Event('minicloud:refresh'))")
    expect(page.locator("details:not([data-old])")).to_have_count(1)
    expect(page.locator("details:not([data-old])")).to_have_attribute("open", "")
    cookie = next(c for c in page.context.cookies() if c["name"] == "minicloud_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.screenshot(path=str(artefacts / "home.png"), full_page=True)


def test_bucket_upload_download_and_presign(page: Page, server: MinicloudServer, artefacts: Path,
                                           tmp_path: Path) -> None:
    sign_in_root(page, server)
    page.goto(console(server, "/s3/buckets"))
    before = bucket_names(server)
    # An invalid name: the service's error next to the field, and nothing created.
    page.get_by_label("Bucket name").fill("Not_A_Valid_Bucket")
    page.get_by_role("button", name="Create bucket").click()
    error = page.locator(".field.has-error #e-bucket_name")
    expect(error).to_contain_text("InvalidBucketName: The specified bucket is not valid.")
    assert bucket_names(server) == before
    page.screenshot(path=str(artefacts / "s3-invalid-bucket-name.png"), full_page=True)

    bucket = unique("console")
    page.get_by_label("Bucket name").fill(bucket)
    page.get_by_role("button", name="Create bucket").click()
    expect(page.get_by_role("heading", name=bucket)).to_be_visible()
    assert bucket in bucket_names(server)

    # Upload through the file input (the same XHR upload with progress as a drop).
    content = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "data.bin"
    source.write_bytes(content)
    page.locator("#upload-input").set_input_files(str(source))
    expect(page.locator(".uploads li", has_text="data.bin")).to_contain_text("Uploaded", timeout=30_000)
    # Drag and drop: a real drop event carrying a File, on the drop zone.
    page.evaluate("""() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(["dropped through the console\\n"], "dropped.txt", {type: "text/plain"}));
        const zone = document.querySelector("#dropzone");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""")
    expect(page.locator(".uploads li", has_text="dropped.txt")).to_contain_text("Uploaded")
    # The listing refreshes by itself (polling its fragment), no reload.
    expect(page.locator("#objects")).to_contain_text("data.bin", timeout=30_000)
    expect(page.locator("#objects")).to_contain_text("dropped.txt", timeout=30_000)
    page.screenshot(path=str(artefacts / "s3-bucket.png"), full_page=True)
    s3 = server.client("s3")
    assert s3.get_object(Bucket=bucket, Key="dropped.txt")["Body"].read() == b"dropped through the console\n"

    # Download: byte-identical.
    with page.expect_download() as info:
        page.locator("#objects tr", has_text="data.bin").get_by_role("link", name="Download").click()
    downloaded = Path(info.value.path())
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == hashlib.sha256(content).hexdigest()

    # Object page: properties, versions; a presigned link that works without credentials.
    page.locator("#objects").get_by_role("link", name="data.bin").click()
    expect(page.locator("#properties")).to_contain_text(f"{len(content)} bytes")
    page.get_by_label("Valid for (seconds)").fill("600")
    page.get_by_role("button", name="Generate link").click()
    link = page.locator("#presigned-url").inner_text().strip()
    assert "X-Amz-Security-Token=" in link and "X-Amz-Expires=600" in link
    with urllib.request.urlopen(link, timeout=30) as response:
        assert response.read() == content
    page.screenshot(path=str(artefacts / "s3-object.png"), full_page=True)

    # Versioning toggle, then delete the objects and the bucket from the console.
    page.goto(console(server, f"/s3/buckets/{bucket}"))
    page.get_by_role("button", name="Enable versioning").click()
    expect(page.locator("#versioning-status")).to_have_text("Enabled")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    page.get_by_role("button", name="Suspend versioning").click()
    expect(page.locator("#versioning-status")).to_have_text("Suspended")


def test_user_without_s3_permission_sees_access_denied(page: Page, server: MinicloudServer, browser: Browser,
                                                      artefacts: Path) -> None:
    sign_in_root(page, server)
    user = unique("viewer")
    password = "Console-Passw0rd!"
    page.goto(console(server, "/iam/users"))
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", name=f"User {user}")).to_be_visible()
    page.locator("#password-form").get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Enable console access").click()
    expect(page.locator(".notice")).to_contain_text(f"Console password of {user} set.")
    page.screenshot(path=str(artefacts / "iam-user.png"), full_page=True)

    other = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        viewer = other.new_page()
        sign_in_user(viewer, server, server.account_id, user, "wrong password")
        expect(viewer.get_by_role("alert")).to_contain_text("Your authentication information is incorrect")
        sign_in_user(viewer, server, server.account_id, user, password)
        expect(viewer.get_by_role("heading", name="Console home")).to_be_visible()
        viewer.goto(console(server, "/s3/buckets"))
        denied = viewer.locator(".error-box.denied")
        expect(denied).to_contain_text("AccessDenied")
        expect(denied).to_contain_text("is not authorized to perform: s3:ListAllMyBuckets")
        expect(viewer.locator("#buckets")).to_have_count(0)
        viewer.screenshot(path=str(artefacts / "s3-access-denied.png"), full_page=True)
        # Nor may it create one: the same error, nothing created.
        before = bucket_names(server)
        viewer.get_by_label("Bucket name").fill(unique("denied"))
        viewer.get_by_role("button", name="Create bucket").click()
        expect(viewer.locator("#e-bucket_name")).to_contain_text("AccessDenied")
        assert bucket_names(server) == before
        # An upload into root's bucket is refused with S3's answer, shown beside the file.
        bucket = unique("private")
        server.client("s3").create_bucket(Bucket=bucket)
        viewer.goto(console(server, f"/s3/buckets/{bucket}"))
        expect(viewer.locator(".error-box.denied")).to_contain_text("s3:ListBucket")
        refused: FilePayload = {"name": "nope.bin", "mimeType": "application/octet-stream",
                                "buffer": os.urandom(2_000_000)}
        viewer.locator("#upload-input").set_input_files(files=[refused])
        expect(viewer.locator(".uploads li", has_text="nope.bin")).to_contain_text("Failed: AccessDenied")
        assert server.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    finally:
        other.close()


def test_policy_editor_shows_errors_and_changes_nothing(page: Page, server: MinicloudServer,
                                                       artefacts: Path) -> None:
    sign_in_root(page, server)
    iam = server.client("iam")
    before = [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]]
    page.goto(console(server, "/iam/policies"))
    name = unique("policy")
    page.get_by_label("Policy name").fill(name)
    editor = page.get_by_label("Policy document (JSON)")
    # Not JSON: the browser says so next to the field and does not send the form.
    editor.fill('{"Version": "2012-10-17", "Statement": [')
    page.get_by_role("button", name="Create policy").click()
    expect(page.locator("#j-document")).to_contain_text("This is not valid JSON")
    expect(page).to_have_url(console(server, "/iam/policies"))
    # JSON, but not a policy: the service's MalformedPolicyDocument next to the field.
    editor.fill(json.dumps({"Version": "2012-10-17",
                            "Statement": [{"Effect": "Perhaps", "Action": "s3:*", "Resource": "*"}]}))
    page.get_by_role("button", name="Create policy").click()
    expect(page.locator(".field.has-error #e-document")).to_contain_text("MalformedPolicyDocument")
    page.screenshot(path=str(artefacts / "iam-policy-malformed.png"), full_page=True)
    assert [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]] == before
    # A valid document creates it.
    page.get_by_label("Policy document (JSON)").fill(json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets",
                                                 "Resource": "*"}]}))
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_role("heading", name=f"Policy {name}")).to_be_visible()
    created = next(p for p in iam.list_policies(Scope="Local")["Policies"] if p["PolicyName"] == name)
    # Editing makes a new default version; a bad document is refused next to the field.
    editor = page.get_by_label("New version of the document")
    editor.fill(json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}))
    page.get_by_role("button", name="Save as the default version").click()
    expect(page.locator(".field.has-error #e-document")).to_contain_text("MalformedPolicyDocument")
    assert iam.get_policy(PolicyArn=created["Arn"])["Policy"]["DefaultVersionId"] == "v1"
    page.get_by_label("New version of the document").fill(json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*", "Resource": "*"}]}))
    page.get_by_role("button", name="Save as the default version").click()
    expect(page.locator(".notice")).to_contain_text("Version v2 is now the default.")
    expect(page.locator("#policy-document")).to_contain_text("s3:List*")
    assert iam.get_policy(PolicyArn=created["Arn"])["Policy"]["DefaultVersionId"] == "v2"


def test_access_key_secret_shown_once(page: Page, server: MinicloudServer) -> None:
    sign_in_root(page, server)
    user = unique("keys")
    server.client("iam").create_user(UserName=user)
    page.goto(console(server, f"/iam/users/{user}"))
    page.get_by_role("button", name="Create access key").click()
    key_id = page.locator("#new-key-id").inner_text()
    secret = page.locator("#new-key-secret").inner_text()
    caller = server.client("sts", keys=type(server.root)(key_id, secret)).get_caller_identity()  # type: ignore[misc]
    assert caller["Arn"].endswith(f":user/{user}")
    page.reload()
    expect(page.locator("#new-key-secret")).to_have_count(0)
    page.locator("#access-keys tr", has_text=key_id).get_by_role("button", name="Deactivate").click()
    expect(page.locator("#access-keys tr", has_text=key_id)).to_contain_text("Inactive")
    page.locator("#access-keys tr", has_text=key_id).get_by_role("button", name="Delete").click()
    expect(page.locator("#access-keys")).not_to_contain_text(key_id)


def test_registry_pages_show_images_and_layers(page: Page, server: MinicloudServer, artefacts: Path) -> None:
    repository = f"console/{uuid.uuid4().hex[:8]}"
    ecr = server.client("ecr")
    ecr.create_repository(repositoryName=repository)
    digest, _ = push_image(ecr, repository, "v1", [b"x" * 1234, b"y" * 4321])
    sign_in_root(page, server)
    page.goto(console(server, "/ecr/repositories"))
    page.get_by_role("link", name=repository).click()
    expect(page.locator("#images")).to_contain_text("v1")
    page.locator("#images").get_by_role("link").first.click()
    expect(page.locator("#image-details")).to_contain_text(digest)
    layers = page.locator("#layers")
    expect(layers).to_contain_text("(1234 bytes)")
    expect(layers).to_contain_text("(4321 bytes)")
    page.screenshot(path=str(artefacts / "ecr-image.png"), full_page=True)


def test_sign_out_and_csrf(page: Page, server: MinicloudServer, artefacts: Path) -> None:
    sign_in_root(page, server)
    page.goto(console(server, "/s3/buckets"))
    # A POST without the session's CSRF token is refused, and changes nothing.
    bucket = unique("csrf")
    response = page.request.post(console(server, "/s3/buckets"), form={"bucket_name": bucket})
    assert response.status == 403 and "CSRF" in response.text()
    forged = page.request.post(console(server, "/s3/buckets"), form={"bucket_name": bucket, "csrf_token": "forged"})
    assert forged.status == 403
    upload = page.request.put(console(server, f"/s3/buckets/{bucket}/upload?key=x"), data=b"x")
    assert upload.status == 403
    assert bucket not in bucket_names(server)
    # Live refresh: a bucket created through the API shows up without a reload.
    created = unique("live")
    server.client("s3").create_bucket(Bucket=created)
    expect(page.locator("#buckets")).to_contain_text(created, timeout=30_000)
    page.screenshot(path=str(artefacts / "s3-buckets.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".notice")).to_contain_text("You have signed out.")
    page.goto(console(server, "/s3/buckets"))
    expect(page).to_have_url(re.compile(r"/signin\?next=%2F_minicloud%2Fconsole%2Fs3%2Fbuckets"))
    fragment = page.request.get(console(server, "/s3/buckets?fragment=1"))
    assert fragment.status == 401


def test_narrow_window_is_usable(browser: Browser, server: MinicloudServer, artefacts: Path) -> None:
    narrow = browser.new_context(viewport={"width": 420, "height": 800})
    try:
        page = narrow.new_page()
        sign_in_root(page, server)
        page.goto(console(server, "/s3/buckets"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"the page scrolls sideways at 420 px ({width} px wide)"
        # Keyboard: the skip link is the first stop and leads to the main content.
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        page.screenshot(path=str(artefacts / "s3-buckets-narrow.png"), full_page=True)
    finally:
        narrow.close()


@pytest.fixture(autouse=True)
def _report_artefacts(artefacts: Path) -> None:
    print(f"console screenshots: {artefacts}")


def test_password_reset_required_at_first_sign_in(page: Page, server: MinicloudServer, browser: Browser) -> None:
    iam = server.client("iam")
    user = unique("reset")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="own-password", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ChangePassword",
                                                "Resource": f"arn:aws:iam::{server.account_id}:user/{user}"}]}))
    iam.create_login_profile(UserName=user, Password="First-Passw0rd!", PasswordResetRequired=True)
    sign_in_user(page, server, server.account_id, user, "First-Passw0rd!")
    expect(page).to_have_url(console(server, "/password"))
    page.goto(console(server, "/s3/buckets"))  # nothing else until the password is changed
    expect(page).to_have_url(console(server, "/password"))
    page.get_by_label("Current password").fill("not-the-password")
    page.get_by_label("New password", exact=True).fill("Second-Passw0rd!")
    page.get_by_label("Confirm new password").fill("Second-Passw0rd!")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#e-old_password")).to_contain_text("AccessDenied: The old password was incorrect.")
    page.get_by_label("Current password").fill("First-Passw0rd!")
    page.get_by_label("New password", exact=True).fill("Second-Passw0rd!")
    page.get_by_label("Confirm new password").fill("Second-Passw0rd!")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".notice")).to_contain_text("Your console password was changed.")
    assert not iam.get_login_profile(UserName=user)["LoginProfile"]["PasswordResetRequired"]
    other = browser.new_context()
    try:
        again = other.new_page()
        sign_in_user(again, server, server.account_id, user, "Second-Passw0rd!")
        expect(again.get_by_role("heading", name="Console home")).to_be_visible()
    finally:
        other.close()


def test_region_selector_scopes_what_is_created(page: Page, tmp_path: Path) -> None:
    regional = MinicloudServer(tmp_path / "regions",
                               env={"MINICLOUD_REGIONS": "us-east-1=us-east-1a,us-east-1b;eu-west-1=eu-west-1a",
                                    "MINICLOUD_ENGINE": "false"})  # no containers needed here
    regional.start(timeout=60)
    try:
        sign_in_root(page, regional)
        region = page.get_by_label("Region")
        expect(region.locator("option")).to_have_text(["us-east-1", "eu-west-1"])
        page.goto(console(regional, "/s3/buckets"))
        region.select_option("eu-west-1")  # submitted on change, back on the same page
        expect(page.get_by_label("Region")).to_have_value("eu-west-1")
        expect(page).to_have_url(console(regional, "/s3/buckets"))
        bucket = unique("europe")
        page.get_by_label("Bucket name").fill(bucket)
        page.get_by_role("button", name="Create bucket").click()
        expect(page.locator(".notice")).to_contain_text(f"Bucket {bucket} created in eu-west-1.")
        location = regional.client("s3", region="eu-west-1").get_bucket_location(Bucket=bucket)
        assert location["LocationConstraint"] == "eu-west-1"
    finally:
        regional.stop()
