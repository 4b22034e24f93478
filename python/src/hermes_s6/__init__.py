"""Hermes profile gateways under s6, through the ``hermes-s6`` command.

``S6ServiceManager`` implements Hermes's ``ServiceManager`` protocol
(``hermes_cli.service_manager``) for the gateway slots
``/run/service/gateway-<profile>`` of the Hermes container. It needs no
privilege: every operation runs ``hermes-s6 ... --json``, which reads state
directly and asks the setuid helper ``hermes-s6-helper`` for every change.
"""

from .errors import (
    GatewayAlreadyRegisteredError,
    GatewayNotRegisteredError,
    S6CommandError,
    S6Error,
)
from .manager import (
    DEFAULT_SCANDIR,
    S6ServiceManager,
    ServiceManagerKind,
    detect_service_manager,
    s6_running,
)
from .names import (
    SERVICE_PREFIX,
    profile_from_service,
    service_name,
    validate_extra_env,
    validate_profile_name,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SCANDIR",
    "GatewayAlreadyRegisteredError",
    "GatewayNotRegisteredError",
    "S6CommandError",
    "S6Error",
    "S6ServiceManager",
    "SERVICE_PREFIX",
    "ServiceManagerKind",
    "__version__",
    "detect_service_manager",
    "profile_from_service",
    "s6_running",
    "service_name",
    "validate_extra_env",
    "validate_profile_name",
]
