"""Fixtures of the unit tests (the fake command lives in ``fakecli``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakecli import FakeCli


@pytest.fixture
def fake_cli(tmp_path: Path) -> FakeCli:
    return FakeCli(tmp_path / "bin")


@pytest.fixture(autouse=True)
def _no_inherited_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests choose the command explicitly; the caller's environment does not leak in."""
    monkeypatch.delenv("HERMES_S6_CLI", raising=False)
    monkeypatch.delenv("HERMES_S6_SCANDIR", raising=False)
    yield

