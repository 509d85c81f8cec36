"""The Dockerfile language, as Docker's classic builder reads it.

Parser directives at the top (``# escape=``), comments, line continuations with the escape
character (comment and empty lines inside a continuation are skipped), instructions with their
``--flags``, JSON (exec) and shell forms, name=value lists (ENV, LABEL), and the word expansion of
``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR:+word}`` with quotes and escapes. Errors carry the
line they come from and Docker's wording ("dockerfile parse error line 3: unknown instruction: X").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
    "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"})
# Instructions whose arguments go through variable expansion (Docker's replaceEnvAllowed).
EXPANDED = frozenset({"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
                      "WORKDIR"})
_FLAGS_ALLOWED = {
    "FROM": {"platform"}, "COPY": {"from", "chown", "chmod"}, "ADD": {"chown", "chmod"},
    "RUN": set(), "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(.*))?$")


class DockerfileError(Exception):
    """A Dockerfile that cannot be parsed; ``line`` is 1-based (0 when not tied to a line)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(f"dockerfile parse error line {line}: {message}" if line else message)
        self.line = line
        self.detail = message


@dataclass(slots=True)
class Instruction:
    keyword: str  # upper case
    rest: str  # the text after the keyword and the flags
    line: int  # where it starts (1-based)
    original: str  # the whole instruction as written (continuations joined)
    flags: dict[str, str] = field(default_factory=dict)
    json_args: list[str] | None = None  # the exec form, when the arguments are a JSON array

    @property
    def display(self) -> str:
        """How Docker's "Step n/m : ..." line shows the instruction."""
        return self.original


@dataclass(slots=True)
class Dockerfile:
    instructions: list[Instruction]
    escape: str = "\\"
    warnings: list[str] = field(default_factory=list)


def parse(text: str) -> Dockerfile:
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    escape, first = _directives(lines)
    result = Dockerfile([], escape)
    index = first
    while index < len(lines):
        raw = lines[index]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        start = index
        parts, index, empty_lines = _logical_line(lines, index, escape)
        if empty_lines:
            result.warnings.append(f"[WARNING]: Empty continuation line found in: {parts.strip()}")
        result.instructions.append(_instruction(parts.strip(), start + 1, escape))
    return result


def _directives(lines: list[str]) -> tuple[str, int]:
    escape = "\\"
    seen: set[str] = set()
    for index, raw in enumerate(lines):
        match = _DIRECTIVE.match(raw.strip())
        if not match:
            return escape, index
        name, value = match.group(1).lower(), match.group(2)
        if name in seen:
            raise DockerfileError(f"only one {name} parser directive can be used", index + 1)
        seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(f"invalid escape token '{value}' does not match ` or \\", index + 1)
            escape = value
    return escape, len(lines)


def _logical_line(lines: list[str], index: int, escape: str) -> tuple[str, int, int]:
    """One instruction, its continuation lines joined; returns (text, next index, empty lines seen)."""
    text = ""
    empty = 0
    while index < len(lines):
        raw = lines[index]
        index += 1
        if text and raw.strip().startswith("#"):
            continue  # a comment inside a continuation
        if text and not raw.strip():
            empty += 1
            continue
        body = raw.rstrip()
        if body.endswith(escape):
            text += body[:-1]
            continue
        text += raw
        return text, index, empty
    return text, index, empty


def _instruction(text: str, line: int, escape: str) -> Instruction:
    keyword, _, rest = text.partition(" ")
    if "\t" in keyword:
        keyword, _, more = keyword.partition("\t")
        rest = more + " " + rest
    upper = keyword.upper()
    if upper not in INSTRUCTIONS:
        raise DockerfileError(f"unknown instruction: {upper}", line)
    rest = rest.strip()
    flags: dict[str, str] = {}
    if upper in _FLAGS_ALLOWED:
        while rest.startswith("--"):
            word, _, remainder = rest.partition(" ")
            match = _FLAG.match(word)
            if not match:
                break
            name = match.group(1)
            if name not in _FLAGS_ALLOWED[upper]:
                raise DockerfileError(f"unknown flag: {name}", line)
            flags[name] = match.group(2) if match.group(2) is not None else "true"
            rest = remainder.strip()
    instruction = Instruction(upper, rest, line, text, flags)
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            instruction.json_args = value
    _check_arguments(instruction)
    return instruction


def _check_arguments(ins: Instruction) -> None:
    if ins.keyword == "HEALTHCHECK":
        if not ins.rest:
            raise DockerfileError("HEALTHCHECK requires an argument", ins.line)
        return
    if ins.keyword in ("CMD", "ENTRYPOINT", "RUN"):
        return  # an empty CMD is allowed (it clears); an empty RUN is refused when run
    if not ins.rest:
        raise DockerfileError(f"{ins.keyword} requires at least one argument", ins.line)
    if ins.keyword == "SHELL" and ins.json_args is None:
        raise DockerfileError("SHELL requires the arguments to be in JSON form", ins.line)
    if ins.keyword in ("COPY", "ADD") and len(ins.json_args if ins.json_args is not None else ins.rest.split()) < 2:
        raise DockerfileError(f"{ins.keyword} requires at least two arguments, but only one was provided. "
                              "Destination could not be determined.", ins.line)
    if ins.keyword == "ENV" and "=" not in ins.rest.split()[0] and len(ins.rest.split(None, 1)) < 2:
        raise DockerfileError("ENV must have two arguments", ins.line)


# -- word expansion ------------------------------------------------------------------------------
Lookup = Callable[[str], "str | None"]


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Docker's ProcessWord: variables expanded, quotes removed, escapes applied."""
    return _Lexer(word, env, escape).word()


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Docker's ProcessWords: split on unquoted whitespace, each word expanded."""
    return _Lexer(text, env, escape).words()


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def word(self) -> str:
        return "".join(self._until(lambda ch: False))

    def words(self) -> list[str]:
        """Words split on unquoted whitespace, an unquoted variable's value split too (as Docker does)."""
        result: list[str] = []
        current: list[str] = []
        started = False
        while self.pos < len(self.text):
            ch = self.peek()
            if ch.isspace():
                self.pos += 1
                if started:
                    result.append("".join(current))
                    current, started = [], False
                continue
            if ch == "$":
                self.pos += 1
                pieces = self._variable().split()
                for index, piece in enumerate(pieces):
                    if index:
                        result.append("".join(current))
                        current = []
                    current.append(piece)
                    started = True
                continue
            current += self._until(lambda c: c.isspace() or c == "$", single=True)
            started = True
        if started:
            result.append("".join(current))
        return result

    def _until(self, stop: Callable[[str], bool], single: bool = False) -> list[str]:
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.peek()
            if stop(ch):
                break
            self.pos += 1
            if ch == self.escape:
                if self.pos < len(self.text):
                    out.append(self.next())
                continue
            if ch == "'":
                out.append(self._single_quoted())
            elif ch == '"':
                out.append(self._double_quoted())
            elif ch == "$":
                out.append(self._variable())
            else:
                out.append(ch)
            if single:
                break
        return out

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise DockerfileError("unexpected end of statement while looking for matching single-quote")
        value = self.text[self.pos:end]
        self.pos = end + 1
        return value

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise DockerfileError("unexpected end of statement while looking for matching double-quote")
            ch = self.next()
            if ch == '"':
                return "".join(out)
            if ch == self.escape and self.peek() in ('"', "$", self.escape):
                out.append(self.next())
            elif ch == "$":
                out.append(self._variable())
            else:
                out.append(ch)

    def _name(self) -> str:
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.pos += 1
        return self.text[start:self.pos]

    def _variable(self) -> str:
        if self.peek() == "{":
            self.pos += 1
            name = self._name()
            if not name:
                raise DockerfileError(f"missing ':' or '}}' in substitution: {self.text}")
            if self.peek() == "}":
                self.pos += 1
                return self.env.get(name, "")
            modifier = self.next()
            if modifier == ":":
                modifier += self.next()
            word = "".join(self._until(lambda ch: ch == "}"))
            if self.next() != "}":
                raise DockerfileError(f"missing '}}' in substitution: {self.text}")
            return self._modified(name, modifier, word)
        name = self._name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def _modified(self, name: str, modifier: str, word: str) -> str:
        value = self.env.get(name)
        if modifier in (":-", "-"):
            return word if value is None or (modifier == ":-" and value == "") else value
        if modifier in (":+", "+"):
            return word if value is not None and (modifier == "+" or value != "") else ""
        if modifier in (":?", "?"):
            if value is None or (modifier == ":?" and value == ""):
                raise DockerfileError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        raise DockerfileError(f"unsupported modifier ({modifier}) in substitution: {self.text}")


def name_values(ins: Instruction, env: Mapping[str, str], escape: str) -> list[tuple[str, str]]:
    """ENV and LABEL: ``key value`` (the old form) or ``k=v k2="v 2" ...``."""
    first = ins.rest.split(None, 1)
    if first and "=" not in first[0]:
        if len(first) < 2:
            raise DockerfileError(f"{ins.keyword} must have two arguments", ins.line)
        key = expand(first[0], env, escape) if ins.keyword in EXPANDED else first[0]
        return [(key, expand(first[1].strip(), env, escape))]
    pairs: list[tuple[str, str]] = []
    for word in _raw_words(ins.rest, escape):
        key, sep, value = word.partition("=")
        if not sep:
            raise DockerfileError(f"Syntax error - can't find = in \"{word}\". Must be of the form: name=value",
                                  ins.line)
        if not key:
            raise DockerfileError(f"{ins.keyword} names can not be blank", ins.line)
        pairs.append((expand(key, env, escape), expand(value, env, escape)))
    return pairs


def _raw_words(text: str, escape: str) -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes for a later ``expand``."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    index = 0
    while index < len(text):
        ch = text[index]
        if ch == escape and index + 1 < len(text) and quote != "'":
            current += [ch, text[index + 1]]
            index += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in ("'", '"'):
            quote = ch
        elif ch.isspace():
            if current:
                words.append("".join(current))
                current = []
            index += 1
            continue
        current.append(ch)
        index += 1
    if quote:
        raise DockerfileError(f"unexpected end of statement while looking for matching {quote}")
    if current:
        words.append("".join(current))
    return words
