"""`minicloud images bootstrap` knows the services' images too: EC2's AMIs and Lambda's runtimes."""

from __future__ import annotations

from pathlib import Path

import pytest

from minicloud.cli import main


def test_unknown_names_are_refused_with_every_known_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MINICLOUD_ROOT_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("MINICLOUD_ROOT_SECRET_ACCESS_KEY", "secret")
    status = main(["images", "bootstrap", "no-such-image", "--data-dir", str(tmp_path),
                   "--endpoint", "http://127.0.0.1:9"])
    assert status == 1
    err = capsys.readouterr().err
    assert "unknown image 'no-such-image'" in err
    for name in ("ami-debian", "lambda-python3.11", "busybox", "nginx"):
        assert name in err
