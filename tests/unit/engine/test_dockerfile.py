"""The Dockerfile parser, word expansion, the build's metadata instructions and .dockerignore."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from minicloud.engine.build.config import StageConfig, apply, duration_ns
from minicloud.engine.build.context import DockerIgnore, glob_regex, unpack_context
from minicloud.engine.build.dockerfile import DockerfileError, expand, expand_words, name_values, parse
from minicloud.engine.errors import InvalidArgument


def test_continuations_comments_and_lines() -> None:
    df = parse("# comment\n\nFROM busybox AS base\nRUN echo a \\\n# inside\n\n    && echo b\n  run echo lower\n")
    assert [i.keyword for i in df.instructions] == ["FROM", "RUN", "RUN"]
    assert [i.line for i in df.instructions] == [3, 4, 8]
    assert df.instructions[1].rest == "echo a     && echo b"
    assert df.instructions[2].original == "run echo lower"
    assert df.warnings  # the empty continuation line


def test_escape_directive() -> None:
    df = parse("# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo done\n")
    assert df.escape == "`" and df.instructions[1].rest == "dir c:\\   && echo done"
    with pytest.raises(DockerfileError, match="invalid escape token"):
        parse("# escape=x\nFROM busybox\n")
    not_directive = parse("FROM busybox\n# escape=`\nRUN echo \\\n x\n")
    assert not_directive.escape == "\\" and not_directive.instructions[1].rest == "echo  x"


def test_json_and_shell_forms_and_flags() -> None:
    df = parse('FROM busybox\nCMD ["echo", "hi"]\nCMD echo hi\nCOPY --from=base --chown=1:2 /a /b\nRUN [not json\n')
    assert df.instructions[1].json_args == ["echo", "hi"] and df.instructions[2].json_args is None
    assert df.instructions[3].flags == {"from": "base", "chown": "1:2"} and df.instructions[3].rest == "/a /b"
    assert df.instructions[4].json_args is None


@pytest.mark.parametrize(("text", "message"), [
    ("FROM busybox\nRUNN x\n", "dockerfile parse error line 2: unknown instruction: RUNN"),
    ("FROM busybox\nCOPY onlyone\n", "line 2: COPY requires at least two arguments"),
    ("FROM busybox\nENV KEY\n", "line 2: ENV must have two arguments"),
    ("FROM busybox\nCOPY --bogus=1 a b\n", "line 2: unknown flag: bogus"),
    ("FROM busybox\nSHELL /bin/bash\n", "line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM busybox\nWORKDIR\n", "line 2: WORKDIR requires at least one argument"),
])
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as failed:
        parse(text)
    assert message in str(failed.value)


def test_expansion() -> None:
    env = {"A": "x", "EMPTY": "", "SP": "a b"}
    assert expand("$A-${A}-${NOPE:-def}-${EMPTY:-e}-${EMPTY-e}", env) == "x-x-def-e-"
    assert expand("${A:+set}|${NOPE:+set}|${EMPTY:+set}|${EMPTY+set}", env) == "set|||set"
    assert expand("'$A' \"$A\" \\$A", env) == "$A x $A"
    assert expand_words('one "two $SP" $SP', env) == ["one", "two a b", "a", "b"]
    assert expand("`$A", env, escape="`") == "$A"
    with pytest.raises(DockerfileError, match="NOPE: must be set"):
        expand("${NOPE:?must be set}", env)


def test_name_values() -> None:
    (ins,) = parse('ENV A=1 B="two words" C=$A\\ x\n').instructions
    assert name_values(ins, {"A": "1"}, "\\") == [("A", "1"), ("B", "two words"), ("C", "1 x")]
    (old,) = parse("ENV KEY some value here\n").instructions
    assert name_values(old, {}, "\\") == [("KEY", "some value here")]
    (bad,) = parse("LABEL x=1 novalue\n").instructions
    with pytest.raises(DockerfileError, match="can't find = in"):
        name_values(bad, {}, "\\")


def test_metadata_instructions() -> None:
    stage = StageConfig({"Cmd": ["sh"], "Env": ["PATH=/bin"]})
    df = parse('FROM x\nENV PATH=/usr/bin:$PATH\nWORKDIR /a\nWORKDIR b\nEXPOSE 80 53/udp 8000-8001\n'
               'ENTRYPOINT ["/e"]\nHEALTHCHECK --interval=1m30s --retries=3 CMD ["true"]\nONBUILD run echo x\n')
    texts = [apply(ins, stage, stage.env()) for ins in df.instructions[1:]]
    config = stage.config
    assert config["Env"] == ["PATH=/usr/bin:/bin"] and config["WorkingDir"] == "/a/b"
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp", "8000/tcp", "8001/tcp"}
    assert config["Entrypoint"] == ["/e"] and config["Cmd"] is None  # ENTRYPOINT resets an inherited CMD
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 90_000_000_000, "Retries": 3}
    assert config["OnBuild"] == ["RUN echo x"] and texts[0] == "ENV PATH=/usr/bin:/bin"
    assert duration_ns("1.5s", 1) == 1_500_000_000
    with pytest.raises(DockerfileError, match="invalid duration"):
        duration_ns("5 seconds", 1)


def test_dockerignore() -> None:
    ignore = DockerIgnore("# comment\n*.log\n/build\n**/secret*\n!keep.log\ndocs/**/*.md\n")
    assert ignore.excluded("a.log") and not ignore.excluded("keep.log") and not ignore.excluded("sub/a.log")
    assert ignore.excluded("build") and ignore.excluded("build/deep/file")
    assert ignore.excluded("secret.txt") and ignore.excluded("x/y/secret.pem")
    assert ignore.excluded("docs/a/b/c.md") and ignore.excluded("docs/c.md") and not ignore.excluded("docs/c.txt")
    assert glob_regex("[a-c]?.txt").match("b1.txt") and not glob_regex("[!a-c]*").match("abc")


def _context_tar(entries: list[tuple[str, str, str]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size, info.mode = len(value), 0o4755
                tar.addfile(info, io.BytesIO(value.encode()))
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
    buf.seek(0)
    return buf


def test_context_keeps_symlinks_but_never_writes_through_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "ctx"
    target.mkdir()
    unpack_context(_context_tar([("Dockerfile", "file", "FROM x\n"), ("link", "symlink", str(outside)),
                                 ("passwd", "symlink", "/etc/passwd"), ("passwd", "file", "mine\n")]), target)
    assert (target / "link").is_symlink() and os.readlink(target / "link") == str(outside)
    assert not (target / "passwd").is_symlink() and (target / "passwd").read_text() == "mine\n"
    assert (target / "passwd").stat().st_mode & 0o7777 == 0o755  # no set-user-id from a client
    (tmp_path / "ctx2").mkdir()
    with pytest.raises(InvalidArgument, match="passes through the symlink"):
        unpack_context(_context_tar([("link", "symlink", str(outside)), ("link/escaped", "file", "x")]),
                       tmp_path / "ctx2")
    assert list(outside.iterdir()) == []
    unpack_context(_context_tar([("../up", "file", "x")]), target)  # names are cleaned beneath the context
    assert (target / "up").exists() and not (tmp_path / "up").exists()
