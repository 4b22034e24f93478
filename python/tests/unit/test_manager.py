"""S6ServiceManager against a fake hermes-s6: arguments, standard input,
documents and every error path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fakecli import FakeCli, control_doc, info_doc, status_doc
from hermes_s6 import (
    GatewayAlreadyRegisteredError,
    GatewayNotRegisteredError,
    S6CommandError,
    S6Error,
    S6ServiceManager,
)

LIFECYCLE = ["start", "stop", "restart"]


def manager(fake: FakeCli, **kwargs: object) -> S6ServiceManager:
    return S6ServiceManager(cli=fake.path, **kwargs)  # type: ignore[arg-type]


def assert_plain_call(fake: FakeCli) -> None:
    """Every call passes --json last and leaves nothing open on stdin."""
    for call in fake.calls:
        assert call.args[-1] == "--json"
        assert call.stdin_kind == "devnull"
        assert call.stdin == ""


# -- lifecycle ---------------------------------------------------------------


def test_kind_and_scandir() -> None:
    mgr = S6ServiceManager()
    assert mgr.kind == "s6"
    assert S6ServiceManager.kind == "s6"
    assert mgr.scandir == Path("/run/service")


@pytest.mark.parametrize("action", LIFECYCLE)
def test_lifecycle_runs_the_cli(fake_cli: FakeCli, action: str) -> None:
    fake_cli.reply("gateway", action, stdout=control_doc(action, "work", message=f"{action}ed"))
    getattr(manager(fake_cli), action)("gateway-work")
    [call] = fake_cli.calls
    assert call.argv == [str(fake_cli.path), "gateway", action, "-p", "work", "--json"]
    assert_plain_call(fake_cli)


def test_default_profile(fake_cli: FakeCli) -> None:
    fake_cli.reply("gateway", "start", stdout=control_doc("start", "default"))
    manager(fake_cli).start("gateway-default")
    assert fake_cli.calls[0].args == ["gateway", "start", "-p", "default", "--json"]


@pytest.mark.parametrize("action", LIFECYCLE)
def test_missing_slot(fake_cli: FakeCli, action: str) -> None:
    fake_cli.reply(
        "gateway",
        action,
        stdout=control_doc(action, "typo", 66, "no such gateway"),
        exit=66,
        stderr="hermes-s6: no such gateway 'typo'\n",
    )
    with pytest.raises(GatewayNotRegisteredError) as info:
        getattr(manager(fake_cli), action)("gateway-typo")
    exc = info.value
    assert str(exc) == (
        "no such gateway 'typo': register it with `hermes profile create typo` first, "
        "or pass an existing profile name via `-p <name>`"
    )
    assert exc.profile == "typo"
    assert exc.service == "gateway-typo"
    assert isinstance(exc, S6Error) and isinstance(exc, RuntimeError)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (69, "s6-svscan is not running"),
        (70, "internal error"),
        (72, "the helper /usr/libexec/hermes-s6-helper is missing"),
        (75, "the s6 service limit would be exceeded"),
        (77, "not authorized"),
        (78, "unsafe state: /run/service/gateway-work/supervise is a symbolic link"),
    ],
)
@pytest.mark.parametrize("action", LIFECYCLE)
def test_command_failures(fake_cli: FakeCli, action: str, code: int, message: str) -> None:
    stderr = f"hermes-s6: {message}\n"
    fake_cli.reply(
        "gateway", action, stdout=control_doc(action, "work", code, message), exit=code, stderr=stderr
    )
    with pytest.raises(S6CommandError) as info:
        getattr(manager(fake_cli), action)("gateway-work")
    exc = info.value
    assert not isinstance(exc, (GatewayNotRegisteredError, ValueError))
    assert exc.returncode == exc.exit_code == code
    assert exc.stderr == stderr
    assert exc.action == action
    assert exc.service == "gateway-work"
    assert message in str(exc) and f"exit {code}" in str(exc)


def test_invalid_reported_by_cli_is_value_error(fake_cli: FakeCli) -> None:
    fake_cli.reply(
        "gateway", "start", stdout=control_doc("start", "work", 65, "bad name"), exit=65
    )
    with pytest.raises(ValueError, match="bad name"):
        manager(fake_cli).start("gateway-work")


@pytest.mark.parametrize(
    "name",
    [
        "main-hermes",
        "dashboard",
        "work",
        "gateway-",
        "gateway-Work",
        "gateway-../etc",
        "gateway-a/b",
        "gateway--x",
        "gateway-_x",
        "gateway-x\n",
        "gateway-" + "a" * 64,
        "",
        "Gateway-work",
    ],
)
@pytest.mark.parametrize("method", [*LIFECYCLE, "is_running"])
def test_bad_service_names(fake_cli: FakeCli, method: str, name: str) -> None:
    with pytest.raises(ValueError):
        getattr(manager(fake_cli), method)(name)
    assert fake_cli.calls == []


def test_longest_profile_name(fake_cli: FakeCli) -> None:
    profile = "a" * 63
    fake_cli.reply("gateway", "start", stdout=control_doc("start", profile))
    manager(fake_cli).start(f"gateway-{profile}")
    assert fake_cli.calls[0].args[3] == profile


# -- is_running ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("up", True),
        ("down", False),
        ("finishing", False),
        ("unsupervised", False),
        ("unregistered", False),
        ("unknown", False),
    ],
)
def test_is_running(fake_cli: FakeCli, state: str, expected: bool) -> None:
    fake_cli.reply("gateway", "status", stdout=status_doc("work", state))
    assert manager(fake_cli).is_running("gateway-work") is expected
    [call] = fake_cli.calls
    assert call.args == ["gateway", "status", "-p", "work", "--json"]
    assert_plain_call(fake_cli)


def test_is_running_without_slot_is_false(fake_cli: FakeCli) -> None:
    fake_cli.reply(
        "gateway", "status", exit=66, stderr="hermes-s6: no such gateway 'nosuch'\n"
    )
    assert manager(fake_cli).is_running("gateway-nosuch") is False


def test_is_running_failure(fake_cli: FakeCli) -> None:
    fake_cli.reply("gateway", "status", exit=69, stderr="hermes-s6: s6-svscan is not running\n")
    with pytest.raises(S6CommandError) as info:
        manager(fake_cli).is_running("gateway-work")
    assert info.value.returncode == 69
    assert "s6-svscan is not running" in str(info.value)


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "not json",
        json.dumps({"schema": "hermes-s6.status/1"}),
        json.dumps({"schema": "hermes-s6.status/1", "gateways": [{"profile": "other", "state": "up"}]}),
        json.dumps({"schema": "hermes-s6.status/1", "gateways": [{"profile": "work", "state": True}]}),
        json.dumps({"schema": "hermes-s6.profiles/1", "gateways": []}),
        json.dumps({"schema": "hermes-s6.status/2", "gateways": []}),
    ],
)
def test_is_running_malformed(fake_cli: FakeCli, stdout: str) -> None:
    fake_cli.reply("gateway", "status", stdout=stdout)
    with pytest.raises(S6CommandError, match="unexpected output"):
        manager(fake_cli).is_running("gateway-work")


# -- register / unregister -------------------------------------------------------


def test_register_starts_by_default(fake_cli: FakeCli) -> None:
    fake_cli.reply("profile", "register", stdout=control_doc("register", "work"))
    manager(fake_cli).register_profile_gateway("work")
    [call] = fake_cli.calls
    assert call.args == ["profile", "register", "work", "--json"]
    assert_plain_call(fake_cli)


def test_register_down(fake_cli: FakeCli) -> None:
    fake_cli.reply("profile", "register", stdout=control_doc("register", "work"))
    manager(fake_cli).register_profile_gateway("work", start_now=False)
    assert fake_cli.calls[0].args == ["profile", "register", "work", "--down", "--json"]


def test_register_empty_env_sends_nothing(fake_cli: FakeCli) -> None:
    fake_cli.reply("profile", "register", stdout=control_doc("register", "work"))
    manager(fake_cli).register_profile_gateway("work", extra_env={})
    assert_plain_call(fake_cli)


def test_register_env_goes_on_stdin_only(fake_cli: FakeCli) -> None:
    secret = "s3cr3t-t0ken value=\"quoted\" ünïcode \\ back"
    fake_cli.reply("profile", "register", stdout=control_doc("register", "work"))
    manager(fake_cli).register_profile_gateway(
        "work", extra_env={"TELEGRAM_BOT_TOKEN": secret, "API_SERVER_PORT": "8650", "_X": ""}
    )
    [call] = fake_cli.calls
    assert call.args == ["profile", "register", "work", "--json"]
    assert call.stdin_kind == "pipe"
    # The payload is a sorted JSON object, and the pipe was closed (the
    # fake read it to the end).
    assert json.loads(call.stdin) == {"API_SERVER_PORT": "8650", "TELEGRAM_BOT_TOKEN": secret, "_X": ""}
    assert list(json.loads(call.stdin)) == ["API_SERVER_PORT", "TELEGRAM_BOT_TOKEN", "_X"]
    assert not any(secret in arg or "s3cr3t" in arg for arg in call.argv)


def test_register_existing_slot(fake_cli: FakeCli) -> None:
    fake_cli.reply(
        "profile",
        "register",
        stdout=control_doc("register", "work", 73, "gateway 'work' is already registered"),
        exit=73,
        stderr="hermes-s6: gateway 'work' is already registered\n",
    )
    with pytest.raises(GatewayAlreadyRegisteredError) as info:
        manager(fake_cli).register_profile_gateway("work", start_now=False)
    exc = info.value
    # Hermes's profile hook catches ValueError for "already registered".
    assert isinstance(exc, ValueError)
    assert isinstance(exc, S6CommandError) and isinstance(exc, RuntimeError)
    assert exc.returncode == 73 and exc.profile == "work" and exc.service == "gateway-work"
    assert "already registered" in str(exc)


def test_register_rejected_payload(fake_cli: FakeCli) -> None:
    fake_cli.reply(
        "profile", "register", stdout=control_doc("register", "work", 65, "invalid payload"), exit=65
    )
    with pytest.raises(ValueError, match="invalid payload"):
        manager(fake_cli).register_profile_gateway("work", extra_env={"A": "1"})


@pytest.mark.parametrize(
    ("code", "exc_type"),
    [(66, GatewayNotRegisteredError), (69, S6CommandError), (75, S6CommandError), (77, S6CommandError)],
)
def test_register_failures(fake_cli: FakeCli, code: int, exc_type: type[Exception]) -> None:
    fake_cli.reply(
        "profile", "register", stdout=control_doc("register", "work", code, "failed"), exit=code
    )
    with pytest.raises(exc_type):
        manager(fake_cli).register_profile_gateway("work")


@pytest.mark.parametrize("profile", ["", "Work", "-p", "a/b", "../x", "a" * 64, "gateway-work "])
def test_register_bad_profile(fake_cli: FakeCli, profile: str) -> None:
    mgr = manager(fake_cli)
    with pytest.raises(ValueError):
        mgr.register_profile_gateway(profile)
    with pytest.raises(ValueError):
        mgr.unregister_profile_gateway(profile)
    assert fake_cli.calls == []


BAD_ENVS: list[dict[str, str]] = [
    {"HOME": "/tmp"},
    {"PATH": "/tmp"},
    {"HERMES_S6_SUPERVISED_CHILD": "0"},
    {"HERMES_SUPERVISED_CHILD": "0"},
    {"LD_PRELOAD": "/tmp/x.so"},
    {"LD_LIBRARY_PATH": "/tmp"},
    {"GCONV_PATH": "/tmp"},
    {"GLIBC_TUNABLES": "x"},
    {"PYTHONPATH": "/tmp"},
    {"BASH_ENV": "/tmp/x"},
    {"IFS": " "},
    {"lower": "x"},
    {"1ABC": "x"},
    {"A-B": "x"},
    {"": "x"},
    {"A" * 129: "x"},
    {"TOKEN": "a\nb"},
    {"TOKEN": "a\0b"},
    {"TOKEN": "\udcff"},
    {f"K{i}": "v" for i in range(65)},
    {"BIG": "x" * (64 * 1024)},
]


@pytest.mark.parametrize("env", BAD_ENVS, ids=lambda env: next(iter(env))[:20] + f"-{len(env)}")
def test_register_bad_env(fake_cli: FakeCli, env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        manager(fake_cli).register_profile_gateway("work", extra_env=env)
    assert fake_cli.calls == []


@pytest.mark.parametrize("env", [{"TOKEN": 3}, {5: "x"}, ["A", "B"]])
def test_register_env_of_wrong_type(fake_cli: FakeCli, env: object) -> None:
    with pytest.raises(ValueError):
        manager(fake_cli).register_profile_gateway("work", extra_env=env)  # type: ignore[arg-type]
    assert fake_cli.calls == []


def test_register_env_limits_are_inclusive(fake_cli: FakeCli) -> None:
    fake_cli.reply("profile", "register", stdout=control_doc("register", "work"))
    mgr = manager(fake_cli)
    mgr.register_profile_gateway("work", extra_env={f"K{i}": "v" for i in range(64)})
    mgr.register_profile_gateway("work", extra_env={"A" * 128: "v"})
    # {"BIG":"..."} is 10 bytes around the value.
    mgr.register_profile_gateway("work", extra_env={"BIG": "x" * (64 * 1024 - 10)})
    assert [len(c.stdin.encode()) for c in fake_cli.calls][-1] == 64 * 1024


def test_unregister(fake_cli: FakeCli) -> None:
    fake_cli.reply("profile", "unregister", stdout=control_doc("unregister", "work"))
    manager(fake_cli).unregister_profile_gateway("work")
    [call] = fake_cli.calls
    assert call.args == ["profile", "unregister", "work", "--json"]
    assert_plain_call(fake_cli)


def test_unregister_failure(fake_cli: FakeCli) -> None:
    fake_cli.reply(
        "profile", "unregister", stdout=control_doc("unregister", "work", 78, "unsafe"), exit=78
    )
    with pytest.raises(S6CommandError) as info:
        manager(fake_cli).unregister_profile_gateway("work")
    assert info.value.returncode == 78


# -- list and info ---------------------------------------------------------------


def test_list(fake_cli: FakeCli) -> None:
    fake_cli.reply(
        "profile", "list", stdout={"schema": "hermes-s6.profiles/1", "profiles": ["default", "work"]}
    )
    assert manager(fake_cli).list_profile_gateways() == ["default", "work"]
    [call] = fake_cli.calls
    assert call.args == ["profile", "list", "--json"]
    assert_plain_call(fake_cli)


def test_list_empty(fake_cli: FakeCli) -> None:
    fake_cli.reply("profile", "list", stdout={"schema": "hermes-s6.profiles/1", "profiles": []})
    assert manager(fake_cli).list_profile_gateways() == []


@pytest.mark.parametrize(
    "doc",
    [
        {"schema": "hermes-s6.profiles/1"},
        {"schema": "hermes-s6.profiles/1", "profiles": "default"},
        {"schema": "hermes-s6.profiles/1", "profiles": ["Work"]},
        {"schema": "hermes-s6.profiles/1", "profiles": [1]},
        {"schema": "hermes-s6.profiles/9", "profiles": []},
        {"schema": "hermes-s6.control/1", "profiles": []},
    ],
)
def test_list_malformed(fake_cli: FakeCli, doc: dict[str, object]) -> None:
    fake_cli.reply("profile", "list", stdout=doc)
    with pytest.raises(S6CommandError, match="unexpected output"):
        manager(fake_cli).list_profile_gateways()


def test_list_failure(fake_cli: FakeCli) -> None:
    fake_cli.reply("profile", "list", exit=70, stderr="hermes-s6: cannot read /run/service\n")
    with pytest.raises(S6CommandError) as info:
        manager(fake_cli).list_profile_gateways()
    assert info.value.returncode == 70 and "cannot read /run/service" in str(info.value)


@pytest.mark.parametrize("value", [True, False])
def test_supports_runtime_registration_is_cached(fake_cli: FakeCli, value: bool) -> None:
    fake_cli.reply("info", stdout=info_doc(runtime_registration=value))
    mgr = manager(fake_cli)
    assert mgr.supports_runtime_registration() is value
    assert mgr.supports_runtime_registration() is value
    [call] = fake_cli.calls
    assert call.args == ["info", "--json"]
    assert_plain_call(fake_cli)


@pytest.mark.parametrize(
    ("stdout", "code"),
    [
        ("", 70),
        ("garbage", 0),
        (json.dumps({"schema": "hermes-s6.info/1"}), 0),
        (json.dumps({"schema": "hermes-s6.info/1", "runtime_registration": "yes"}), 0),
        (json.dumps({"schema": "hermes-s6.info/2", "runtime_registration": True}), 0),
    ],
)
def test_supports_runtime_registration_when_unknown(
    fake_cli: FakeCli, stdout: str, code: int
) -> None:
    fake_cli.reply("info", stdout=stdout, exit=code)
    mgr = manager(fake_cli)
    assert mgr.supports_runtime_registration() is False
    # A failure is not remembered: the next call asks again.
    fake_cli.reply("info", stdout=info_doc())
    assert mgr.supports_runtime_registration() is True


def test_supports_runtime_registration_without_cli(tmp_path: Path) -> None:
    mgr = S6ServiceManager(cli=tmp_path / "missing")
    assert mgr.supports_runtime_registration() is False


# -- documents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema", ["hermes-s6.control/2", "hermes-s6.control/0", "hermes-s6.control/x", "hermes-s6.status/1", None]
)
def test_unknown_schema(fake_cli: FakeCli, schema: str | None) -> None:
    doc = control_doc("start", "work")
    doc["schema"] = schema
    fake_cli.reply("gateway", "start", stdout=doc)
    with pytest.raises(S6CommandError, match="unexpected output"):
        manager(fake_cli).start("gateway-work")


def test_newer_minor_schema_is_accepted(fake_cli: FakeCli) -> None:
    doc = control_doc("start", "work", schema="hermes-s6.control/1.3")
    doc["something_new"] = {"ignored": True}
    fake_cli.reply("gateway", "start", stdout=doc)
    manager(fake_cli).start("gateway-work")


@pytest.mark.parametrize("stdout", ["", "garbage", "[1, 2]", "{\"schema\": "])
def test_malformed_output_on_success(fake_cli: FakeCli, stdout: str) -> None:
    fake_cli.reply("gateway", "start", stdout=stdout)
    with pytest.raises(S6CommandError, match="unexpected output") as info:
        manager(fake_cli).start("gateway-work")
    assert info.value.returncode == 0


@pytest.mark.parametrize("code", [66, 70, 101, 134])
def test_crash_without_document(fake_cli: FakeCli, code: int) -> None:
    """Without a document nothing is guessed from the exit status: the
    command's exit status and stderr are reported as they are."""
    fake_cli.reply("gateway", "stop", stdout="", exit=code, stderr="thread 'main' panicked\n")
    with pytest.raises(S6CommandError) as info:
        manager(fake_cli).stop("gateway-work")
    assert not isinstance(info.value, GatewayNotRegisteredError)
    assert info.value.returncode == code
    assert info.value.stderr == "thread 'main' panicked\n"
    assert "panicked" in str(info.value)


def test_document_and_exit_status_disagree(fake_cli: FakeCli) -> None:
    fake_cli.reply("gateway", "start", stdout=control_doc("start", "work", 0), exit=69)
    with pytest.raises(S6CommandError, match="the document says exit 0, the process exited 69"):
        manager(fake_cli).start("gateway-work")


def test_document_without_results(fake_cli: FakeCli) -> None:
    doc = control_doc("start", "work", 69)
    doc["results"] = []
    fake_cli.reply("gateway", "start", stdout=doc, exit=69, stderr="hermes-s6: s6-svscan is not running\n")
    with pytest.raises(S6CommandError, match="s6-svscan is not running"):
        manager(fake_cli).start("gateway-work")


# -- the command itself ---------------------------------------------------------------


def test_timeout(fake_cli: FakeCli) -> None:
    fake_cli.reply("gateway", "start", stdout=control_doc("start", "work"), sleep=10)
    mgr = manager(fake_cli, timeout=0.5)
    with pytest.raises(S6CommandError) as info:
        mgr.start("gateway-work")
    assert info.value.returncode == 124
    assert "did not finish within 0.5 s" in str(info.value)
    assert mgr.timeout == 0.5


def test_bad_timeout() -> None:
    with pytest.raises(ValueError):
        S6ServiceManager(timeout=0)


def test_cli_missing(tmp_path: Path) -> None:
    mgr = S6ServiceManager(cli=tmp_path / "nowhere" / "hermes-s6")
    with pytest.raises(S6CommandError) as info:
        mgr.start("gateway-work")
    assert info.value.returncode == 127
    assert "is not an executable file" in str(info.value)


def test_cli_missing_from_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(S6CommandError) as info:
        S6ServiceManager().stop("gateway-work")
    assert info.value.returncode == 127
    assert "hermes-s6 is not on PATH" in str(info.value)
    assert "HERMES_S6_CLI" in str(info.value)


def test_cli_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeCli(tmp_path / "elsewhere", name="my-hermes-s6")
    fake.reply("gateway", "start", stdout=control_doc("start", "work"))
    monkeypatch.setenv("HERMES_S6_CLI", str(fake.path))
    monkeypatch.setenv("PATH", str(tmp_path))
    S6ServiceManager().start("gateway-work")
    assert fake.calls[0].argv[0] == str(fake.path)


def test_cli_from_environment_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HERMES_S6_CLI", str(tmp_path / "missing"))
    with pytest.raises(S6CommandError) as info:
        S6ServiceManager().start("gateway-work")
    assert info.value.returncode == 127
    assert "$HERMES_S6_CLI" in str(info.value)


def test_cli_on_path(monkeypatch: pytest.MonkeyPatch, fake_cli: FakeCli) -> None:
    fake_cli.reply("gateway", "start", stdout=control_doc("start", "work"))
    monkeypatch.setenv("PATH", f"{fake_cli.dir}{os.pathsep}{os.environ['PATH']}")
    S6ServiceManager().start("gateway-work")
    assert fake_cli.calls[0].argv[0] == str(fake_cli.path)


def test_cli_argument_beats_environment(monkeypatch: pytest.MonkeyPatch, fake_cli: FakeCli, tmp_path: Path) -> None:
    fake_cli.reply("gateway", "start", stdout=control_doc("start", "work"))
    monkeypatch.setenv("HERMES_S6_CLI", str(tmp_path / "missing"))
    manager(fake_cli).start("gateway-work")
    assert len(fake_cli.calls) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="checks what root refuses to run")
def test_root_refuses_a_cli_others_can_replace(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    fake = FakeCli(shared)
    fake.reply("gateway", "start", stdout=control_doc("start", "work"))
    shared.chmod(0o777)
    with pytest.raises(S6CommandError, match="writable by group or others") as info:
        S6ServiceManager(cli=fake.path).start("gateway-work")
    assert info.value.returncode == 126
    shared.chmod(0o755)
    os.chown(fake.path, 65534, 65534)
    with pytest.raises(S6CommandError, match="not owned by root"):
        S6ServiceManager(cli=fake.path).start("gateway-work")
    os.chown(fake.path, 0, 0)
    S6ServiceManager(cli=fake.path).start("gateway-work")
    assert len(fake.calls) == 1


def test_scandir_is_passed_on(fake_cli: FakeCli, tmp_path: Path) -> None:
    fake_cli.reply("gateway", "status", stdout=status_doc("work", "up"))
    mgr = manager(fake_cli, scandir=tmp_path / "scan")
    assert mgr.scandir == tmp_path / "scan"
    assert mgr.is_running("gateway-work")
    assert fake_cli.calls[0].env["HERMES_S6_SCANDIR"] == str(tmp_path / "scan")


def test_scandir_from_environment(monkeypatch: pytest.MonkeyPatch, fake_cli: FakeCli) -> None:
    monkeypatch.setenv("HERMES_S6_SCANDIR", "/srv/scan")
    fake_cli.reply("gateway", "status", stdout=status_doc("work", "down"))
    mgr = manager(fake_cli)
    assert mgr.scandir == Path("/srv/scan")
    assert not mgr.is_running("gateway-work")
    assert fake_cli.calls[0].env["HERMES_S6_SCANDIR"] == "/srv/scan"


def test_every_call_passes_json_and_closes_stdin(fake_cli: FakeCli) -> None:
    fake_cli.reply("gateway", "start", stdout=control_doc("start", "w"))
    fake_cli.reply("gateway", "stop", stdout=control_doc("stop", "w"))
    fake_cli.reply("gateway", "restart", stdout=control_doc("restart", "w"))
    fake_cli.reply("gateway", "status", stdout=status_doc("w", "up"))
    fake_cli.reply("profile", "register", stdout=control_doc("register", "w"))
    fake_cli.reply("profile", "unregister", stdout=control_doc("unregister", "w"))
    fake_cli.reply("profile", "list", stdout={"schema": "hermes-s6.profiles/1", "profiles": ["w"]})
    fake_cli.reply("info", stdout=info_doc())
    mgr = manager(fake_cli)
    mgr.supports_runtime_registration()
    mgr.register_profile_gateway("w", start_now=False)
    mgr.start("gateway-w")
    mgr.is_running("gateway-w")
    mgr.restart("gateway-w")
    mgr.stop("gateway-w")
    mgr.list_profile_gateways()
    mgr.unregister_profile_gateway("w")
    assert len(fake_cli.calls) == 8
    assert_plain_call(fake_cli)
