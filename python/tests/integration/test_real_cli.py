"""S6ServiceManager against the real hermes-s6, helper and s6 (see conftest)."""

from __future__ import annotations

import grp
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from it_support import unique_name, wait_for
from hermes_s6 import (
    GatewayNotRegisteredError,
    S6ServiceManager,
    detect_service_manager,
    s6_running,
)


def test_detects_s6() -> None:
    assert s6_running()
    assert detect_service_manager() == "s6"


def test_supports_runtime_registration(mgr: S6ServiceManager) -> None:
    assert mgr.supports_runtime_registration() is True
    assert S6ServiceManager().kind == "s6"


def test_lifecycle(mgr: S6ServiceManager, new_profile: Callable[[], str]) -> None:
    profile = new_profile()
    service = f"gateway-{profile}"
    assert profile not in mgr.list_profile_gateways()

    mgr.register_profile_gateway(profile, start_now=False)
    assert profile in mgr.list_profile_gateways()
    assert mgr.is_running(service) is False

    mgr.start(service)
    wait_for(f"{service} up", lambda: mgr.is_running(service))
    mgr.start(service)  # already up: nothing to do
    assert mgr.is_running(service)

    mgr.stop(service)
    wait_for(f"{service} down", lambda: not mgr.is_running(service))

    mgr.restart(service)  # a stopped gateway is started
    wait_for(f"{service} up after restart", lambda: mgr.is_running(service))

    mgr.unregister_profile_gateway(profile)
    assert profile not in mgr.list_profile_gateways()
    assert mgr.is_running(service) is False
    mgr.unregister_profile_gateway(profile)  # absent: nothing to do


def test_register_started(mgr: S6ServiceManager, new_profile: Callable[[], str]) -> None:
    profile = new_profile()
    mgr.register_profile_gateway(profile)
    wait_for(f"gateway-{profile} up", lambda: mgr.is_running(f"gateway-{profile}"))


def test_list_is_sorted_and_has_default(mgr: S6ServiceManager) -> None:
    profiles = mgr.list_profile_gateways()
    assert "default" in profiles
    assert profiles == sorted(profiles)


def test_missing_slot(mgr: S6ServiceManager) -> None:
    profile = unique_name("missing")
    service = f"gateway-{profile}"
    for action in (mgr.start, mgr.stop, mgr.restart):
        with pytest.raises(GatewayNotRegisteredError) as info:
            action(service)
        assert info.value.profile == profile
        assert str(info.value) == (
            f"no such gateway '{profile}': register it with `hermes profile create {profile}` "
            "first, or pass an existing profile name via `-p <name>`"
        )
    assert mgr.is_running(service) is False
    mgr.unregister_profile_gateway(profile)
    assert profile not in mgr.list_profile_gateways()


@pytest.mark.parametrize("name", ["main-hermes", "dashboard", "gateway-Bad", "gateway-../x", "gateway-"])
def test_bad_names(mgr: S6ServiceManager, name: str) -> None:
    before = mgr.list_profile_gateways()
    for method in (mgr.start, mgr.stop, mgr.restart, mgr.is_running):
        with pytest.raises(ValueError):
            method(name)
    if name.startswith("gateway-"):  # "main-hermes" is a valid profile name
        with pytest.raises(ValueError):
            mgr.register_profile_gateway(name.removeprefix("gateway-") or "-")
    assert mgr.list_profile_gateways() == before


@pytest.mark.parametrize(
    "env",
    [{"LD_PRELOAD": "/tmp/x.so"}, {"HOME": "/tmp"}, {"PATH": "/tmp"}, {"lower": "x"}, {"TOKEN": "a\nb"}],
)
def test_bad_env(mgr: S6ServiceManager, new_profile: Callable[[], str], env: dict[str, str]) -> None:
    profile = new_profile()
    with pytest.raises(ValueError):
        mgr.register_profile_gateway(profile, extra_env=env)
    assert profile not in mgr.list_profile_gateways()


def test_already_registered_is_a_value_error(
    mgr: S6ServiceManager, new_profile: Callable[[], str]
) -> None:
    profile = new_profile()
    mgr.register_profile_gateway(profile, start_now=False)
    with pytest.raises(ValueError, match="already"):
        mgr.register_profile_gateway(profile, start_now=False)


def test_extra_env_reaches_the_gateway_only(
    mgr: S6ServiceManager, new_profile: Callable[[], str], hermes_home: Path
) -> None:
    profile = new_profile()
    key = "PYIT_SECRET_TOKEN"
    secret = f"pyit-{secrets.token_hex(16)}"
    mgr.register_profile_gateway(profile, extra_env={key: secret, "API_SERVER_PORT": "8699"})
    wait_for(f"gateway-{profile} up", lambda: mgr.is_running(f"gateway-{profile}"))

    # The stand-in gateway records its environment at start.
    runs = hermes_home / "profiles" / profile / "standin-runs.jsonl"
    wait_for(f"{runs} to be written", lambda: runs.is_file() and runs.stat().st_size > 0)
    record = json.loads(runs.read_text().splitlines()[-1])
    assert record["env"][key] == secret
    assert record["env"]["API_SERVER_PORT"] == "8699"
    assert record["uid"] == os.getuid()
    assert all(secret not in arg for arg in record["argv"])

    # In the slot: env/<KEY>, root's, readable by group hermes, not by others.
    slot = mgr.scandir / f"gateway-{profile}"
    hermes_gid = grp.getgrnam("hermes").gr_gid
    env_dir = slot / "env"
    st = env_dir.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, hermes_gid, 0o750)
    st = (env_dir / key).stat()
    assert (st.st_uid, st.st_gid) == (0, hermes_gid)
    assert stat.S_IMODE(st.st_mode) == 0o640, "readable by group hermes only, writable by root only"
    assert (env_dir / key).read_text().rstrip("\n") == secret
    assert secret not in (slot / "run").read_text()

    # Never in any process's arguments.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        assert secret.encode() not in cmdline, f"secret in the arguments of pid {entry.name}"


def test_profile_create_and_delete_like_hermes(
    mgr: S6ServiceManager, hermes_home: Path, new_profile: Callable[[], str]
) -> None:
    """What Hermes's profile hooks do: create the profile directory, register
    its gateway down (an existing slot is a ValueError and is ignored), start
    it later, and on delete unregister it before removing the directory."""
    profile = new_profile()
    service = f"gateway-{profile}"
    assert (hermes_home / "profiles" / profile / "SOUL.md").is_file()

    # profile create
    assert detect_service_manager() == "s6"
    assert mgr.supports_runtime_registration()
    mgr.register_profile_gateway(profile, start_now=False)
    try:
        mgr.register_profile_gateway(profile, start_now=False)
    except ValueError:
        pass
    else:
        pytest.fail("registering twice must raise ValueError")
    assert profile in mgr.list_profile_gateways()
    assert not mgr.is_running(service)

    # hermes -p <profile> gateway start
    mgr.start(service)
    wait_for(f"{service} up", lambda: mgr.is_running(service))
    state = json.loads((hermes_home / "profiles" / profile / "gateway_state.json").read_text())
    assert state["desired_state"] == "running"

    # profile delete
    mgr.unregister_profile_gateway(profile)
    assert profile not in mgr.list_profile_gateways()
    assert not (mgr.scandir / service).exists()
    assert not mgr.is_running(service)


def test_helper_missing() -> None:
    pytest.skip(
        "not testable from inside the container: the helper is root's and "
        "cannot be removed or replaced by the hermes user"
    )
