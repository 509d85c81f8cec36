"""The console shares its origin (host and port) with S3 objects and function URLs, so a page
served from another account's bucket must not be able to act as the signed-in console user."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page

from tests.e2e.conftest import sign_in_root
from tests.support.server import Keys, MinicloudServer

# What a hostile page would do: read a CSRF token from a console page, then create an IAM user.
HOSTILE = b"""<!doctype html><title>loading</title><script>
(async () => {
  try {
    const base = "/_minicloud/console";
    const page = await (await fetch(base + "/iam/users", {credentials: "include"})).text();
    const match = page.match(/name="csrf_token" value="([^"]+)"/);
    if (!match) { document.title = "done no-token"; return; }
    const body = new URLSearchParams({csrf_token: match[1], user_name: "made-by-a-hostile-page"});
    const r = await fetch(base + "/iam/users", {method: "POST", credentials: "include", body});
    document.title = "done " + r.status;
  } catch (e) {
    document.title = "done refused " + e;
  }
})();
</script>"""


def test_an_html_object_of_another_account_cannot_drive_the_console(server: MinicloudServer, page: Page) -> None:
    other = server.client("organizations").create_account(
        Email=f"{uuid.uuid4().hex[:8]}@example.com", AccountName="other")["CreateAccountStatus"]["AccountId"]
    iam = server.client("iam")
    admin = f"admin-{uuid.uuid4().hex[:6]}"  # (roles cannot be assumed by root)
    iam.create_user(UserName=admin)
    iam.attach_user_policy(UserName=admin, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=admin)["AccessKey"]
    creds = server.client("sts", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"])).assume_role(
        RoleArn=f"arn:aws:iam::{other}:role/OrganizationAccountAccessRole", RoleSessionName="page")["Credentials"]
    s3 = server.client("s3", keys=Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]))
    bucket = f"page-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="x.html", Body=HOSTILE, ContentType="text/html")
    link = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "x.html"}, ExpiresIn=600)

    sign_in_root(page, server)
    response = page.goto(link)
    assert response is not None and "sandbox" in response.headers["content-security-policy"]
    page.wait_for_function("document.title.startsWith('done')", timeout=30_000)  # the script did run
    names = [u["UserName"] for u in server.client("iam").list_users()["Users"]]
    assert "made-by-a-hostile-page" not in names
