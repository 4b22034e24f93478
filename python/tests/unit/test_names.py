"""Names and environments, and service manager detection."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import hermes_s6
from hermes_s6 import manager as manager_module
from hermes_s6 import (
    detect_service_manager,
    profile_from_service,
    s6_running,
    service_name,
    validate_extra_env,
    validate_profile_name,
)


@pytest.mark.parametrize("name", ["default", "work", "a", "0", "a_b-c", "x" * 63, "9lives"])
def test_valid_profile_names(name: str) -> None:
    assert validate_profile_name(name) == name
    assert service_name(name) == f"gateway-{name}"
    assert profile_from_service(f"gateway-{name}") == name


@pytest.mark.parametrize(
    "name", ["", "Work", "-x", "_x", "a.b", "a b", "a/b", "..", "x" * 64, "é", "a\n", None, 3]
)
def test_invalid_profile_names(name: object) -> None:
    with pytest.raises(ValueError, match="invalid profile name"):
        validate_profile_name(name)


def test_validate_extra_env() -> None:
    validate_extra_env({})
    validate_extra_env({"TELEGRAM_BOT_TOKEN": "x", "_A1": "", "UNICODE": "ü"})
    with pytest.raises(ValueError, match="reserved"):
        validate_extra_env({"LD_AUDIT": "x"})
    with pytest.raises(ValueError, match="NUL or newline"):
        validate_extra_env({"A": "\n"})


def write_comm(tmp_path: Path, comm: str | None) -> Path:
    path = tmp_path / "comm"
    if comm is not None:
        path.write_text(comm + "\n")
    return path


@pytest.mark.parametrize(
    ("comm", "basedir", "expected"),
    [
        ("s6-svscan", True, True),
        ("s6-svscan", False, False),
        ("systemd", True, False),
        ("init", False, False),
        (None, True, False),
    ],
)
def test_s6_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, comm: str | None, basedir: bool, expected: bool
) -> None:
    monkeypatch.setattr(manager_module, "_PROC1_COMM", write_comm(tmp_path, comm))
    base = tmp_path / "basedir"
    if basedir:
        base.mkdir()
    monkeypatch.setattr(manager_module, "_S6_BASEDIR", base)
    assert s6_running() is expected
    if expected:
        assert detect_service_manager() == "s6"
    else:
        assert detect_service_manager() != "s6"


def test_detect_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(manager_module, "_PROC1_COMM", write_comm(tmp_path, "systemd"))
    monkeypatch.setattr(manager_module, "_S6_BASEDIR", tmp_path / "nope")
    monkeypatch.setattr(manager_module, "_SYSTEMD_RUNTIME", tmp_path)
    monkeypatch.setattr(sys, "platform", "linux")
    assert detect_service_manager() == "systemd"
    monkeypatch.setattr(manager_module, "_SYSTEMD_RUNTIME", tmp_path / "nope")
    assert detect_service_manager() == "none"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert detect_service_manager() == "launchd"
    monkeypatch.setattr(sys, "platform", "win32")
    assert detect_service_manager() == "windows"


def test_public_api() -> None:
    assert hermes_s6.__version__ == "0.1.0"
    for name in hermes_s6.__all__:
        assert hasattr(hermes_s6, name), name
