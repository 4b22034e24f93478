"""S6ServiceManager against Hermes's ServiceManager protocol.

``ServiceManager`` below restates the protocol of ``hermes_cli.service_manager``
(method names, parameters, keyword-only arguments, defaults, types); the
exception classes are checked against the constructors and attributes Hermes
code relies on.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import pytest

import hermes_s6
from hermes_s6 import (
    GatewayAlreadyRegisteredError,
    GatewayNotRegisteredError,
    S6CommandError,
    S6Error,
    S6ServiceManager,
)

ServiceManagerKind = Literal["systemd", "launchd", "windows", "s6", "none"]


@runtime_checkable
class ServiceManager(Protocol):
    kind: ServiceManagerKind

    def start(self, name: str) -> None: ...
    def stop(self, name: str) -> None: ...
    def restart(self, name: str) -> None: ...
    def is_running(self, name: str) -> bool: ...

    def supports_runtime_registration(self) -> bool: ...
    def register_profile_gateway(
        self, profile: str, *, extra_env: dict[str, str] | None = None, start_now: bool = True
    ) -> None: ...
    def unregister_profile_gateway(self, profile: str) -> None: ...
    def list_profile_gateways(self) -> list[str]: ...


METHODS = [
    "start",
    "stop",
    "restart",
    "is_running",
    "supports_runtime_registration",
    "register_profile_gateway",
    "unregister_profile_gateway",
    "list_profile_gateways",
]


def test_is_a_service_manager() -> None:
    mgr: ServiceManager = S6ServiceManager()  # mypy checks the structure too
    assert isinstance(mgr, ServiceManager)
    assert mgr.kind == "s6"


def test_kind_type() -> None:
    assert hermes_s6.ServiceManagerKind == ServiceManagerKind
    hints = typing.get_type_hints(S6ServiceManager)
    assert hints["kind"] == ServiceManagerKind


@pytest.mark.parametrize("method", METHODS)
def test_signatures(method: str) -> None:
    ours = inspect.signature(getattr(S6ServiceManager, method))
    theirs = inspect.signature(getattr(ServiceManager, method))
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.default) for p in theirs.parameters.values()
    ]
    assert typing.get_type_hints(getattr(S6ServiceManager, method)) == typing.get_type_hints(
        getattr(ServiceManager, method)
    )


def test_every_protocol_member_is_there() -> None:
    members = {name for name in vars(ServiceManager) if not name.startswith("_")}
    assert members | {"kind"} == {*METHODS, "kind"}
    for name in METHODS:
        assert callable(getattr(S6ServiceManager, name))


def test_constructor_like_hermes() -> None:
    """Hermes builds it with no argument, or with a scan directory."""
    assert S6ServiceManager().scandir == Path("/run/service")
    assert S6ServiceManager(Path("/x")).scandir == Path("/x")
    assert S6ServiceManager(scandir=Path("/y")).scandir == Path("/y")


def test_exception_hierarchy() -> None:
    assert issubclass(S6Error, RuntimeError)
    assert issubclass(GatewayNotRegisteredError, S6Error)
    assert issubclass(S6CommandError, S6Error)
    assert issubclass(GatewayAlreadyRegisteredError, S6CommandError)
    assert issubclass(GatewayAlreadyRegisteredError, ValueError)
    assert not issubclass(GatewayNotRegisteredError, S6CommandError)


def test_exceptions_construct_like_hermes() -> None:
    base = S6Error("boom", service="gateway-x")
    assert str(base) == "boom" and base.service == "gateway-x"
    assert S6Error("boom").service is None

    missing = GatewayNotRegisteredError("typo")
    assert missing.profile == "typo" and missing.service == "gateway-typo"
    assert str(missing) == (
        "no such gateway 'typo': register it with `hermes profile create typo` first, "
        "or pass an existing profile name via `-p <name>`"
    )

    failed = S6CommandError(service="gateway-x", action="start", returncode=77, stderr="denied\n")
    assert (failed.service, failed.action, failed.returncode, failed.stderr) == (
        "gateway-x",
        "start",
        77,
        "denied\n",
    )
    assert failed.exit_code == 77
    assert "denied" in str(failed) and "77" in str(failed) and "gateway-x" in str(failed)
    quiet = S6CommandError(service="gateway-x", action="stop", returncode=1, stderr="  ")
    assert str(quiet).endswith("(exit 1)")


def test_exception_signatures() -> None:
    sig = inspect.signature(S6CommandError.__init__)
    for name in ("service", "action", "returncode", "stderr"):
        assert sig.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert sig.parameters[name].default is inspect.Parameter.empty
    assert list(inspect.signature(GatewayNotRegisteredError.__init__).parameters) == ["self", "profile"]
    s6 = inspect.signature(S6Error.__init__)
    assert s6.parameters["service"].kind is inspect.Parameter.KEYWORD_ONLY
    assert s6.parameters["service"].default is None
