"""``S6ServiceManager``: Hermes's ``ServiceManager`` protocol for the profile
gateways s6 supervises in the Hermes container, through ``hermes-s6``.

The manager holds no privilege and touches no s6 file itself. Every
operation is one run of the ``hermes-s6`` command with ``--json``;
``hermes-s6`` reads state directly and asks its setuid helper for every
change.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Literal

from . import _command
from ._command import Command, Completed
from .errors import GatewayAlreadyRegisteredError, GatewayNotRegisteredError, S6CommandError
from .names import encode_extra_env, profile_from_service, service_name, validate_profile_name

__all__ = [
    "DEFAULT_SCANDIR",
    "S6ServiceManager",
    "ServiceManagerKind",
    "detect_service_manager",
    "s6_running",
]

ServiceManagerKind = Literal["systemd", "launchd", "windows", "s6", "none"]

DEFAULT_SCANDIR = Path("/run/service")
SCANDIR_ENV = "HERMES_S6_SCANDIR"

# Probed by s6_running(); module attributes so tests can point them elsewhere.
_PROC1_COMM = Path("/proc/1/comm")
_S6_BASEDIR = Path("/run/s6/basedir")
_SYSTEMD_RUNTIME = Path("/run/systemd/system")

# Exit statuses of hermes-s6 that become something else than S6CommandError.
_EXIT_INVALID = 65
_EXIT_NO_SLOT = 66
_EXIT_EXISTS = 73

_log = logging.getLogger("hermes_s6")


def s6_running() -> bool:
    """True when s6-svscan is PID 1 (the Hermes container's s6-overlay).

    Both probes are readable by any user: ``/proc/1/comm`` reads
    ``s6-svscan`` and ``/run/s6/basedir`` is a directory. Either alone can
    be a false positive.
    """
    try:
        comm = _PROC1_COMM.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return comm == "s6-svscan" and _S6_BASEDIR.is_dir()


def detect_service_manager() -> ServiceManagerKind:
    """The service manager in charge here, as Hermes names it.

    ``"s6"`` when :func:`s6_running`; otherwise ``"windows"``, ``"launchd"``
    (macOS), ``"systemd"`` (booted with systemd) or ``"none"``. Only
    ``"s6"`` is handled by this package; Hermes's own host detection is
    finer (it also requires a reachable user bus for ``"systemd"``).
    """
    if s6_running():
        return "s6"
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "launchd"
    if _SYSTEMD_RUNTIME.is_dir():
        return "systemd"
    return "none"


class S6ServiceManager:
    """Profile gateways supervised by s6 (``/run/service/gateway-<profile>``).

    ``name`` arguments are service names, ``gateway-<profile>``; any other
    name is a ``ValueError``. ``profile`` arguments are profile names.

    ``scandir`` is where the slots are (``$HERMES_S6_SCANDIR``, else
    ``/run/service``); when given, ``hermes-s6`` is told to read status
    there. ``cli`` is the ``hermes-s6`` executable (default
    ``$HERMES_S6_CLI``, else ``hermes-s6`` on ``PATH``), ``timeout`` the
    most seconds any one call may take.
    """

    kind: ServiceManagerKind = "s6"

    def __init__(
        self,
        scandir: Path | None = None,
        *,
        cli: str | os.PathLike[str] | None = None,
        timeout: float = _command.DEFAULT_TIMEOUT,
    ) -> None:
        env: dict[str, str] | None = None
        if scandir is None:
            scandir = Path(os.environ.get(SCANDIR_ENV) or DEFAULT_SCANDIR)
        else:
            env = {**os.environ, SCANDIR_ENV: os.fspath(scandir)}
        self.scandir = Path(scandir)
        self._command = Command(cli, timeout=timeout, env=env)
        self._runtime_registration: bool | None = None

    @property
    def timeout(self) -> float:
        """The most seconds one call to ``hermes-s6`` may take."""
        return self._command.timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scandir={self.scandir!r})"

    # -- lifecycle ---------------------------------------------------------

    def start(self, name: str) -> None:
        """Bring the gateway up and record ``desired_state = running``."""
        self._lifecycle("start", name)

    def stop(self, name: str) -> None:
        """Bring the gateway down (a planned stop) and record ``desired_state = stopped``."""
        self._lifecycle("stop", name)

    def restart(self, name: str) -> None:
        """Restart the gateway (start it if it is down); never ends as a stop."""
        self._lifecycle("restart", name)

    def is_running(self, name: str) -> bool:
        """True when the gateway process is up; False when it is down or has no slot."""
        profile = profile_from_service(name)
        service = service_name(profile)
        done = self._command.run(
            ["gateway", "status", "-p", profile], action="status", service=service
        )
        if done.returncode == _EXIT_NO_SLOT:
            return False
        doc = _command.document(done, "status", action="status", service=service)
        if done.returncode != 0:
            raise _command.failure(done, action="status", service=service)
        if doc is None:
            raise _command.protocol_error(
                done, action="status", service=service, problem="no JSON document"
            )
        gateways = doc.get("gateways")
        if not isinstance(gateways, list):
            raise _command.protocol_error(
                done, action="status", service=service, problem="'gateways' is not a list"
            )
        for gateway in gateways:
            if isinstance(gateway, dict) and gateway.get("profile") == profile:
                state = gateway.get("state")
                if not isinstance(state, str):
                    raise _command.protocol_error(
                        done, action="status", service=service, problem="'state' is not a string"
                    )
                return state == "up"
        raise _command.protocol_error(
            done, action="status", service=service, problem=f"no entry for profile {profile!r}"
        )

    # -- runtime registration ---------------------------------------------

    def supports_runtime_registration(self) -> bool:
        """Whether gateways can be registered and unregistered now.

        False when ``hermes-s6`` cannot tell (missing, failing): registering
        would fail then too. A successful answer is kept for the life of
        this object.
        """
        if self._runtime_registration is not None:
            return self._runtime_registration
        try:
            done = self._command.run(["info"], action="info")
            doc = _command.document(done, "info", action="info", service=None)
            if done.returncode != 0 or doc is None:
                raise _command.failure(done, action="info", service=None)
            value = doc.get("runtime_registration")
            if not isinstance(value, bool):
                raise _command.protocol_error(
                    done, action="info", service=None, problem="'runtime_registration' is not a boolean"
                )
        except S6CommandError as exc:
            _log.warning("cannot tell whether gateways can be registered: %s", exc)
            return False
        self._runtime_registration = value
        return value

    def register_profile_gateway(
        self, profile: str, *, extra_env: dict[str, str] | None = None, start_now: bool = True
    ) -> None:
        """Create the profile's gateway slot, started unless ``start_now`` is False.

        ``extra_env`` is added to the gateway's environment; it is handed to
        ``hermes-s6`` on standard input, never in arguments. Raises
        ``ValueError`` for an invalid name or environment,
        ``GatewayAlreadyRegisteredError`` (a ``ValueError`` too) when the
        slot exists, ``S6CommandError`` otherwise.
        """
        validate_profile_name(profile)
        payload = encode_extra_env(extra_env) if extra_env else None
        args = ["profile", "register", profile]
        if not start_now:
            args.append("--down")
        self._control("register", profile, args, stdin=payload)

    def unregister_profile_gateway(self, profile: str) -> None:
        """Stop the profile's gateway and remove its slot; nothing to do when there is none."""
        validate_profile_name(profile)
        self._control("unregister", profile, ["profile", "unregister", profile])

    def list_profile_gateways(self) -> list[str]:
        """The profiles that have a gateway slot, without the ``gateway-`` prefix, sorted."""
        done = self._command.run(["profile", "list"], action="list")
        doc = _command.document(done, "profiles", action="list", service=None)
        if done.returncode != 0 or doc is None:
            raise _command.failure(done, action="list", service=None)
        profiles = doc.get("profiles")
        if not isinstance(profiles, list):
            raise _command.protocol_error(
                done, action="list", service=None, problem="'profiles' is not a list"
            )
        result: list[str] = []
        for profile in profiles:
            try:
                result.append(validate_profile_name(profile))
            except ValueError:
                raise _command.protocol_error(
                    done, action="list", service=None, problem=f"invalid profile name {profile!r}"
                ) from None
        return result

    # -- internals ---------------------------------------------------------

    def _lifecycle(self, action: str, name: str) -> None:
        profile = profile_from_service(name)
        self._control(action, profile, ["gateway", action, "-p", profile])

    def _control(
        self, action: str, profile: str, args: list[str], *, stdin: bytes | None = None
    ) -> None:
        """Runs a ``hermes-s6.control/1`` command for one profile and turns a
        failure into the exception Hermes expects."""
        service = service_name(profile)
        done = self._command.run(args, action=action, service=service, stdin=stdin)
        doc = _command.document(done, "control", action=action, service=service)
        if doc is None:
            if done.returncode == 0:
                raise _command.protocol_error(
                    done, action=action, service=service, problem="no JSON document"
                )
            raise _command.failure(done, action=action, service=service)
        code, message = _control_outcome(doc, profile, done, action=action, service=service)
        if code == 0:
            return
        if code == _EXIT_NO_SLOT:
            raise GatewayNotRegisteredError(profile)
        if code == _EXIT_INVALID:
            raise ValueError(message or done.stderr.strip() or f"hermes-s6 refused {action} of {service!r}")
        if code == _EXIT_EXISTS and action == "register":
            raise GatewayAlreadyRegisteredError(profile, stderr=done.stderr, detail=message)
        raise _command.failure(done, action=action, service=service, message=message)


def _control_outcome(
    doc: dict[str, Any], profile: str, done: Completed, *, action: str, service: str
) -> tuple[int, str | None]:
    """The exit code of a control document (checked against the process's)
    and the message of the profile's result, if any."""
    code = doc.get("exit_code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise _command.protocol_error(
            done, action=action, service=service, problem="'exit_code' is not an integer"
        )
    if code != done.returncode:
        raise _command.protocol_error(
            done,
            action=action,
            service=service,
            problem=f"the document says exit {code}, the process exited {done.returncode}",
        )
    results = doc.get("results")
    if not isinstance(results, list):
        raise _command.protocol_error(
            done, action=action, service=service, problem="'results' is not a list"
        )
    for result in results:
        if isinstance(result, dict) and result.get("profile") == profile:
            message = result.get("message")
            return code, message if isinstance(message, str) and message else None
    return code, None
