"""An S3 static website in a real browser (Debian's chromium): ``*.localhost`` resolves to the
loopback, so ``http://<bucket>.s3-website-us-east-1.localhost:<port>/`` reaches minicloud as a
website URL reaches S3."""

from __future__ import annotations

import json
import uuid
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import sign_in_root
from tests.e2e.test_console_origin import HOSTILE
from tests.support.server import MinicloudServer

APP = b"""<!doctype html><title>loading</title><h1 id="out">...</h1>
<script type="module" src="/app.js"></script>"""
# A module script, a fetch of the site's own file and local storage: what a sandboxed page (an
# origin of its own, opaque) could not do.
APP_JS = b"""const data = await (await fetch("/data.json")).json();
localStorage.setItem("greeted", data.greeting);
document.getElementById("out").textContent = localStorage.getItem("greeted");
document.title = "ready";
"""


def _site(server: MinicloudServer, objects: dict[str, tuple[bytes, str]]) -> tuple[Any, str]:
    s3 = server.client("s3")
    bucket = f"web-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"}})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    for key, (body, content_type) in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return s3, f"http://{bucket}.s3-website-us-east-1.localhost:{server.port}"


def test_a_website_in_a_browser(server: MinicloudServer, page: Page) -> None:
    _, url = _site(server, {
        "index.html": (APP, "text/html"), "app.js": (APP_JS, "text/javascript"),
        "data.json": (b'{"greeting": "hello from S3"}', "application/json"),
        "docs/index.html": (b"<!doctype html><title>docs</title><h1>Docs</h1>", "text/html"),
        "error.html": (b"<!doctype html><title>lost</title><h1>Not here</h1>", "text/html"),
    })
    page.goto(url + "/")
    expect(page).to_have_title("ready")
    expect(page.locator("#out")).to_have_text("hello from S3")
    page.goto(url + "/docs")  # a folder without its slash: 302 to it
    assert page.url == url + "/docs/"
    expect(page.locator("h1")).to_have_text("Docs")
    response = page.goto(url + "/nowhere.html")  # the error document, with the error's status
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not here")


def test_a_website_cannot_drive_the_console(server: MinicloudServer, page: Page) -> None:
    """A website's pages are not sandboxed (their host is their origin), and the console is never
    served on a website host: a hostile website gets nothing from the signed-in console."""
    _, url = _site(server, {"index.html": (HOSTILE, "text/html")})
    sign_in_root(page, server)
    page.goto(url + "/")
    page.wait_for_function("document.title.startsWith('done')", timeout=30_000)  # the script did run
    assert page.title() == "done no-token"
    names = [u["UserName"] for u in server.client("iam").list_users()["Users"]]
    assert "made-by-a-hostile-page" not in names
