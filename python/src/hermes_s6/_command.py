"""Running ``hermes-s6 ... --json`` and reading its document.

Every call: an absolute path to the command, ``--json`` last, standard input
either ``/dev/null`` or a pipe that carries the payload and is then closed,
output captured, a timeout. Nothing secret is ever put in the arguments.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import S6CommandError

__all__ = ["CLI_ENV", "Command", "Completed", "DEFAULT_TIMEOUT", "document"]

_log = logging.getLogger("hermes_s6")

CLI_NAME = "hermes-s6"
CLI_ENV = "HERMES_S6_CLI"
DEFAULT_TIMEOUT = 30.0

# Exit statuses this module reports for a command that did not finish on
# its own, after the shell's conventions.
EXIT_TIMEOUT = 124
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

# The major version of each document this module understands.
SCHEMA_MAJOR = 1


@dataclass(frozen=True)
class Completed:
    """A finished run: exit status, standard output and standard error."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Command:
    """The ``hermes-s6`` executable, found once and run with a timeout."""

    def __init__(
        self,
        executable: str | os.PathLike[str] | None,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self._explicit = os.fspath(executable) if executable is not None else None
        self._resolved: str | None = None
        self.timeout = timeout
        self._env = dict(env) if env is not None else None

    def resolve(self, *, action: str, service: str | None) -> str:
        """The absolute path of the command: the constructor's, else
        ``$HERMES_S6_CLI``, else ``hermes-s6`` looked up on ``PATH``."""
        if self._resolved is not None:
            return self._resolved
        candidate = self._explicit or os.environ.get(CLI_ENV) or None
        where = "given" if self._explicit else f"${CLI_ENV}" if candidate else "PATH"
        found = shutil.which(candidate or CLI_NAME)
        if found is None:
            detail = (
                f"{candidate!r} ({where}) is not an executable file"
                if candidate
                else f"{CLI_NAME} is not on PATH; install it or set {CLI_ENV} to its path"
            )
            raise S6CommandError(
                service=service, action=action, returncode=EXIT_NOT_FOUND, stderr="", detail=detail
            )
        path = os.path.abspath(found)
        if os.geteuid() == 0:
            problem = _unsafe_for_root(path)
            if problem is not None:
                raise S6CommandError(
                    service=service,
                    action=action,
                    returncode=EXIT_NOT_EXECUTABLE,
                    stderr="",
                    detail=f"refusing to run {path} as root: {problem}",
                )
        self._resolved = path
        return path

    def run(
        self,
        args: Sequence[str],
        *,
        action: str,
        service: str | None = None,
        stdin: bytes | None = None,
    ) -> Completed:
        """Runs ``hermes-s6 <args> --json``; ``stdin`` is written to a pipe that
        is then closed, or standard input is ``/dev/null``."""
        argv = (self.resolve(action=action, service=service), *args, "--json")
        _log.debug("running %s", " ".join(argv))
        try:
            proc = subprocess.run(
                argv,
                input=stdin,
                stdin=subprocess.DEVNULL if stdin is None else None,
                capture_output=True,
                timeout=self.timeout,
                env=self._env,
                close_fds=True,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise S6CommandError(
                service=service,
                action=action,
                returncode=EXIT_TIMEOUT,
                stderr=_text(exc.stderr),
                detail=f"{' '.join(argv[1:])} did not finish within {self.timeout:g} s",
            ) from None
        except OSError as exc:
            raise S6CommandError(
                service=service,
                action=action,
                returncode=EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_NOT_EXECUTABLE,
                stderr="",
                detail=f"cannot run {argv[0]}: {exc.strerror or exc}",
            ) from None
        done = Completed(argv, proc.returncode, _text(proc.stdout), _text(proc.stderr))
        _log.debug("%s exited %d", argv[0], done.returncode)
        return done


def document(
    done: Completed, kind: str, *, action: str, service: str | None
) -> dict[str, Any] | None:
    """The JSON document on ``done``'s standard output if it is a
    ``hermes-s6.<kind>/1`` object; None when there is no JSON object at all.

    A document of another kind, or of a major version this module does not
    know, is an ``S6CommandError``.
    """
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    schema = doc.get("schema")
    prefix = f"hermes-s6.{kind}/"
    if not isinstance(schema, str) or not schema.startswith(prefix):
        raise protocol_error(
            done, action=action, service=service, problem=f"expected a {prefix}N document, got schema {schema!r}"
        )
    major = schema[len(prefix) :].split(".", 1)[0]
    if not major.isdigit() or int(major) != SCHEMA_MAJOR:
        raise protocol_error(
            done,
            action=action,
            service=service,
            problem=f"unsupported document version {schema!r} (this package reads {prefix}{SCHEMA_MAJOR})",
        )
    return doc


def protocol_error(
    done: Completed, *, action: str, service: str | None, problem: str
) -> S6CommandError:
    """The command answered something this module cannot use."""
    return S6CommandError(
        service=service,
        action=action,
        returncode=done.returncode,
        stderr=done.stderr,
        detail=f"unexpected output from {done.args[0]}: {problem}",
    )


def failure(done: Completed, *, action: str, service: str | None, message: str | None = None) -> S6CommandError:
    """A non-zero exit, with the document's message or the command's stderr."""
    return S6CommandError(
        service=service,
        action=action,
        returncode=done.returncode,
        stderr=done.stderr,
        detail=message,
    )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")


def _unsafe_for_root(path: str) -> str | None:
    """Why root should not execute ``path``, or None.

    Hermes puts directories of its data volume on PATH, and that volume is
    writable by the unprivileged hermes user. A program root runs must be
    root's, and so must every directory on the way to it (sticky
    directories such as /tmp aside), none writable by group or others.
    """
    real = Path(os.path.realpath(path))
    for node in (real, *real.parents):
        try:
            st = node.stat()
        except OSError as exc:
            return f"cannot check {node}: {exc.strerror or exc}"
        writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_uid != 0:
            return f"{node} is not owned by root"
        if writable and not (sticky_dir and node != real):
            return f"{node} is writable by group or others"
    return None
