"""What a hollow container "does": a tiny interpreter of the commands a Job's pod usually runs, so
that the same manifest finishes on a hollow node as it does on Docker. Pure; no clock, no IO.

A container's command line (Kubernetes `command` then `args`) is understood when it is

- one simple command: `["sleep", "5"]`, `["true"]`, `["false"]`, `["echo", "hi"]`; or
- a shell line: `["sh", "-c", LINE]` (also `/bin/sh`, `bash`, `/bin/bash`), where LINE is made of the
  simple commands `sleep N`, `exit [N]`, `true`, `false`, `echo ...`, `:` joined by `;` or `&&`,
  with `$VAR` and `${VAR}` taken from the container's environment.

It then runs for the sum of the sleeps it reaches and exits with the shell's status; `echo` text
becomes the container's log. Anything else (a server, an unknown program, a pipe) gives `None`:
the container runs until it is stopped, as hollow containers always did.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

SHELLS = frozenset({"sh", "/bin/sh", "bash", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"})
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SEPARATOR = re.compile(r"(;|&&)")


@dataclass(frozen=True)
class SimulatedRun:
    """How long the container runs, how it exits, and what it prints."""

    seconds: float
    exit_code: int
    output: bytes = b""


class _NotUnderstood(Exception):
    pass


def _expand(line: str, env: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), line)


def _number(text: str) -> float:
    value = float(text.rstrip("s")) if text.endswith("s") else float(text)
    if value < 0:
        raise _NotUnderstood(text)
    return value


def _step(words: list[str]) -> tuple[float, int, str | None, bool]:
    """One simple command: (seconds it takes, its status, what it prints, whether it exits the shell)."""
    if not words:
        raise _NotUnderstood("empty command")
    name, args = words[0], words[1:]
    if name == "sleep" and len(args) == 1:
        try:
            return _number(args[0]), 0, None, False
        except ValueError:
            raise _NotUnderstood(args[0]) from None
    if name in ("true", ":") and not args:
        return 0.0, 0, None, False
    if name == "false" and not args:
        return 0.0, 1, None, False
    if name == "echo":
        return 0.0, 0, " ".join(args) + "\n", False
    if name == "exit" and len(args) <= 1:
        try:
            code = int(args[0]) if args else None
        except ValueError:
            raise _NotUnderstood(args[0]) from None
        return 0.0, -1 if code is None else code & 0xFF, None, True
    raise _NotUnderstood(name)


def run_line(line: str, env: Mapping[str, str] | None = None) -> SimulatedRun | None:
    """Interpret a shell line (what follows `sh -c`)."""
    if any(c in line for c in "|<>`()\n") or "||" in line or "$(" in line:
        return None
    parts = _SEPARATOR.split(_expand(line, env or {}))
    seconds, status, output = 0.0, 0, []
    connector = ";"
    try:
        for i, part in enumerate(parts):
            if i % 2 == 1:
                connector = part
                continue
            words = shlex.split(part)
            if not words and i == len(parts) - 1 and connector == ";" and i > 0:
                break  # a trailing `;`
            if connector == "&&" and status != 0:
                _step(words)  # still must be understood, but is skipped
                continue
            took, code, printed, exits = _step(words)
            seconds += took
            if printed is not None:
                output.append(printed)
            if exits:
                status = status if code == -1 else code
                break
            status = code
    except (_NotUnderstood, ValueError):
        return None
    return SimulatedRun(seconds, status, "".join(output).encode())


def simulate(
    command: list[str] | None, args: list[str] | None, env: Mapping[str, str] | None = None
) -> SimulatedRun | None:
    """The run of a container whose Kubernetes `command` and `args` are these, if understood."""
    argv = list(command or []) + list(args or [])
    if not argv:
        return None
    if argv[0] in SHELLS:
        if len(argv) == 3 and argv[1] == "-c":
            return run_line(argv[2], env)
        return None
    if argv[0] == "exit":
        return None  # a shell builtin, not a program
    try:
        took, code, printed, _exits = _step([_expand(a, env or {}) for a in argv])
    except _NotUnderstood:
        return None
    return SimulatedRun(took, code, (printed or "").encode())
