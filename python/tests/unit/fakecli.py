"""A fake ``hermes-s6`` for the unit tests, and the documents it answers with.

The fake is a small Python program written into the test's temporary
directory. It answers each call with the first canned reply whose argument
prefix matches, and records what it was given: its arguments, what it read
on standard input, what standard input was, and a few environment
variables.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FAKE = r'''#!{python}
import json, os, stat, sys, time

HERE = {here!r}

def stdin_kind():
    try:
        st = os.fstat(0)
    except OSError:
        return "closed"
    if os.path.samestat(st, os.stat(os.devnull)):
        return "devnull"
    if stat.S_ISFIFO(st.st_mode):
        return "pipe"
    return "other"

kind = stdin_kind()
data = sys.stdin.buffer.read() if kind in ("pipe", "devnull") else b""
args = sys.argv[1:]
with open(os.path.join(HERE, "calls.jsonl"), "a") as f:
    f.write(json.dumps({{
        "argv": sys.argv,
        "stdin_kind": kind,
        "stdin": data.decode("utf-8", "replace"),
        "env": {{k: os.environ.get(k) for k in ("HERMES_S6_SCANDIR",)}},
    }}) + "\n")
with open(os.path.join(HERE, "replies.json")) as f:
    replies = json.load(f)
for reply in replies:
    if args[:len(reply["match"])] == reply["match"]:
        break
else:
    reply = {{"stdout": "", "stderr": "fake hermes-s6: no canned reply\n", "exit": 70}}
time.sleep(reply.get("sleep", 0))
sys.stdout.write(reply.get("stdout", ""))
sys.stderr.write(reply.get("stderr", ""))
sys.exit(reply.get("exit", 0))
'''


@dataclass
class Call:
    argv: list[str]
    stdin_kind: str
    stdin: str
    env: dict[str, str | None]

    @property
    def args(self) -> list[str]:
        return self.argv[1:]


class FakeCli:
    """The fake command: ``path`` to run it, ``reply`` to script it, ``calls`` to inspect it."""

    def __init__(self, directory: Path, name: str = "hermes-s6") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.path = directory / name
        self.path.write_text(_FAKE.format(python=sys.executable, here=str(directory)))
        self.path.chmod(0o755)
        self._replies: list[dict[str, Any]] = []
        self._save()

    def _save(self) -> None:
        (self.dir / "replies.json").write_text(json.dumps(self._replies))

    def reply(
        self,
        *match: str,
        stdout: str | dict[str, Any] = "",
        exit: int = 0,
        stderr: str = "",
        sleep: float = 0,
    ) -> None:
        """Answer calls whose arguments start with ``match`` (latest reply wins)."""
        text = json.dumps(stdout) if isinstance(stdout, dict) else stdout
        self._replies.insert(
            0, {"match": list(match), "stdout": text, "exit": exit, "stderr": stderr, "sleep": sleep}
        )
        self._save()

    @property
    def calls(self) -> list[Call]:
        log = self.dir / "calls.jsonl"
        if not log.exists():
            return []
        return [Call(**json.loads(line)) for line in log.read_text().splitlines()]


def control_doc(
    action: str,
    profile: str,
    exit_code: int = 0,
    message: str | None = None,
    schema: str = "hermes-s6.control/1",
) -> dict[str, Any]:
    return {
        "schema": schema,
        "action": action,
        "results": [
            {
                "profile": profile,
                "service": f"gateway-{profile}",
                "outcome": "done" if exit_code == 0 else "failed",
                "exit_code": exit_code,
                "message": message if message is not None else ("ok" if exit_code == 0 else "failed"),
            }
        ],
        "exit_code": exit_code,
    }


def status_doc(profile: str, state: str, registered: bool = True) -> dict[str, Any]:
    return {
        "schema": "hermes-s6.status/1",
        "service_manager": "s6",
        "generated_at": "2026-11-28T10:32:13Z",
        "gateways": [
            {
                "profile": profile,
                "service": f"gateway-{profile}",
                "state": state,
                "registered": registered,
                "supervised": state not in ("unsupervised", "unregistered"),
                "problems": [],
            }
        ],
    }


def info_doc(runtime_registration: bool = True, control_mode: str = "setuid") -> dict[str, Any]:
    return {
        "schema": "hermes-s6.info/1",
        "service_manager": "s6",
        "control_mode": control_mode,
        "runtime_registration": runtime_registration,
        "versions": {"cli": "0.1.0", "helper": "0.1.0", "s6": "2.15.1.0"},
        "scan_dir": {"path": "/run/service", "services": 7, "limit": 1000},
    }


def no_path_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PATH"}
