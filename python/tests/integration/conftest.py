"""Integration tests: S6ServiceManager against a real ``hermes-s6``, its
setuid helper and s6, inside the Hermes container (or its emulation).

They run only when ``HERMES_S6_INTEGRATION`` is set, as the ``hermes`` user,
with ``HERMES_S6_CLI`` naming the command (else ``hermes-s6`` on PATH) and
``HERMES_HOME`` the data volume (else ``/opt/data``). They need no network
and write only under ``$HERMES_HOME/profiles/pyit-*`` (removed afterwards)
and the temporary directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hermes_s6 import S6ServiceManager
from it_support import unique_name

ENABLED = bool(os.environ.get("HERMES_S6_INTEGRATION"))
SKIP_REASON = (
    "HERMES_S6_INTEGRATION is not set: the integration tests need a real hermes-s6, "
    "its setuid helper and s6-svscan as PID 1 (the Hermes container or its emulation); "
    "NOTHING was tested against them"
)
HERE = Path(__file__).parent


def pytest_report_header(config: pytest.Config) -> str:
    if ENABLED:
        return f"hermes-s6 integration: ON (HERMES_S6_CLI={os.environ.get('HERMES_S6_CLI', '<PATH>')})"
    return f"hermes-s6 integration: SKIPPED, {SKIP_REASON}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ENABLED:
        terminalreporter.write_sep("!", f"hermes-s6 integration tests SKIPPED: {SKIP_REASON}", red=True)


@pytest.fixture(scope="session")
def hermes_home() -> Path:
    return Path(os.environ.get("HERMES_HOME") or "/opt/data")


@pytest.fixture(scope="session")
def cli() -> str:
    path = os.environ.get("HERMES_S6_CLI") or shutil.which("hermes-s6")
    if not path:
        pytest.fail("hermes-s6 is not on PATH and HERMES_S6_CLI is not set")
    return path


@pytest.fixture
def mgr(cli: str) -> S6ServiceManager:
    return S6ServiceManager(cli=cli, timeout=30)


@pytest.fixture
def new_profile(hermes_home: Path, mgr: S6ServiceManager) -> Iterator[Callable[[], str]]:
    """Makes profiles the way ``hermes profile create`` lays them out
    (``profiles/<name>/SOUL.md``); their slots and directories go away after
    the test."""
    made: list[str] = []

    def make() -> str:
        name = unique_name("p")
        home = hermes_home / "profiles" / name
        home.mkdir(parents=True)
        (home / "SOUL.md").write_text("You are a test profile.\n")
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            mgr.unregister_profile_gateway(name)
        finally:
            shutil.rmtree(hermes_home / "profiles" / name, ignore_errors=True)
