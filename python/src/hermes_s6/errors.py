"""Exceptions raised by :class:`hermes_s6.S6ServiceManager`.

The classes have the names, bases, constructor signatures and attributes of
the ones Hermes defines in ``hermes_cli.service_manager``, so Hermes can
re-export these instead of its own and every ``except`` clause, every test
fake that raises ``GatewayNotRegisteredError(profile)`` and every message
shown to users keeps working.

``GatewayNotRegisteredError`` and ``S6CommandError`` derive from
``S6Error``, which is a ``RuntimeError``. ``GatewayAlreadyRegisteredError``
is both an ``S6CommandError`` and a ``ValueError``: Hermes's profile hook
treats a ``ValueError`` from ``register_profile_gateway`` as "already
registered".
"""

from __future__ import annotations

__all__ = [
    "GatewayAlreadyRegisteredError",
    "GatewayNotRegisteredError",
    "S6CommandError",
    "S6Error",
]

# Longest piece of a command's stderr kept in a message; the whole text
# stays available in ``S6CommandError.stderr``.
_MESSAGE_STDERR_MAX = 2000


class S6Error(RuntimeError):
    """A gateway operation failed; ``service`` names the slot when there is one."""

    def __init__(self, message: str, *, service: str | None = None) -> None:
        super().__init__(message)
        self.service = service


class GatewayNotRegisteredError(S6Error):
    """``start``, ``stop`` or ``restart`` named a profile that has no gateway slot.

    ``profile`` is the profile name without the ``gateway-`` prefix.
    """

    def __init__(self, profile: str) -> None:
        self.profile = profile
        super().__init__(
            f"no such gateway {profile!r}: register it with "
            f"`hermes profile create {profile}` first, or pass "
            "an existing profile name via `-p <name>`",
            service=f"gateway-{profile}",
        )


class S6CommandError(S6Error):
    """The ``hermes-s6`` command failed for another reason than a missing slot.

    ``returncode`` is its exit status (see ``hermes_s6`` README for the
    codes; 124 when it did not answer in time, 127 when it cannot be found,
    126 when it cannot be run), ``stderr`` what it wrote on standard error,
    ``action`` the operation (``start``, ``register``, ...).
    """

    def __init__(
        self,
        *,
        service: str | None,
        action: str,
        returncode: int,
        stderr: str,
        detail: str | None = None,
    ) -> None:
        self.action = action
        self.returncode = returncode
        self.stderr = stderr
        target = f"{action} of {service!r}" if service else action
        message = f"hermes-s6: {target} failed (exit {returncode})"
        reason = (detail if detail is not None else stderr).strip()
        if len(reason) > _MESSAGE_STDERR_MAX:
            reason = "..." + reason[-_MESSAGE_STDERR_MAX:]
        if reason:
            message += f": {reason}"
        super().__init__(message, service=service)

    @property
    def exit_code(self) -> int:
        """The same as ``returncode``."""
        return self.returncode


class GatewayAlreadyRegisteredError(S6CommandError, ValueError):
    """``register_profile_gateway`` named a profile whose slot already exists."""

    def __init__(self, profile: str, *, stderr: str = "", detail: str | None = None) -> None:
        self.profile = profile
        super().__init__(
            service=f"gateway-{profile}",
            action="register",
            returncode=73,
            stderr=stderr,
            detail=detail if detail is not None else "the gateway is already registered",
        )
