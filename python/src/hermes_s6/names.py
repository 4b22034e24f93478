"""Profile names, service names and gateway environments, checked before any
command runs.

The rules are the ones ``hermes-s6`` and its setuid helper enforce; both
check again, and the helper is the authority. Checking here first turns a
refusal into a ``ValueError`` that names the offending profile or variable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

__all__ = [
    "SERVICE_PREFIX",
    "encode_extra_env",
    "profile_from_service",
    "service_name",
    "validate_extra_env",
    "validate_profile_name",
]

SERVICE_PREFIX = "gateway-"

# 1 to 63 bytes: with the "gateway-" prefix and the helper's staging
# suffix, a slot name stays within NAME_MAX.
_PROFILE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_KEY_RE = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")

MAX_ENV_KEYS = 64
MAX_ENV_BYTES = 64 * 1024

# Variables the gateway's run script sets, or that the loader, libc, a shell
# or an interpreter treat specially. The helper refuses exactly these.
_RESERVED_KEYS = frozenset(
    {
        "HOME",
        "PATH",
        "HERMES_S6_SUPERVISED_CHILD",
        "HERMES_SUPERVISED_CHILD",
        "GCONV_PATH",
        "GLIBC_TUNABLES",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RES_OPTIONS",
        "LOCALDOMAIN",
        "TZDIR",
        "ENV",
        "IFS",
        "CDPATH",
        "SHELLOPTS",
        "PS4",
    }
)
_RESERVED_PREFIXES = ("LD_", "MALLOC_", "BASH_", "PYTHON", "PERL", "RUBY", "NODE_")


def validate_profile_name(profile: object) -> str:
    """Return ``profile`` if it is a valid profile name, else raise ``ValueError``.

    A name is 1 to 63 characters from ``a-z``, ``0-9``, ``_`` and ``-``,
    starting with a letter or a digit. ``default`` is the root profile.
    """
    if not isinstance(profile, str) or _PROFILE_RE.fullmatch(profile) is None:
        raise ValueError(
            f"invalid profile name {profile!r}: a profile name is 1-63 characters "
            "from a-z, 0-9, '_' and '-', starting with a letter or digit"
        )
    return profile


def service_name(profile: str) -> str:
    """``gateway-<profile>``, for a valid profile name."""
    return SERVICE_PREFIX + validate_profile_name(profile)


def profile_from_service(name: object) -> str:
    """The profile of a ``gateway-<profile>`` service name; ``ValueError`` otherwise."""
    if not isinstance(name, str) or not name.startswith(SERVICE_PREFIX):
        raise ValueError(
            f"not a profile gateway: {name!r} (expected 'gateway-<profile>'; "
            "only profile gateways are managed here)"
        )
    profile = name[len(SERVICE_PREFIX) :]
    try:
        return validate_profile_name(profile)
    except ValueError as exc:
        raise ValueError(f"not a profile gateway: {name!r}: {exc}") from None


def _check_key(key: object) -> str:
    if not isinstance(key, str) or _KEY_RE.fullmatch(key) is None:
        raise ValueError(
            f"invalid environment variable name {key!r}: names are 1-128 characters "
            "from A-Z, 0-9 and '_', not starting with a digit"
        )
    if key in _RESERVED_KEYS or key.startswith(_RESERVED_PREFIXES):
        raise ValueError(
            f"environment variable {key} is reserved for the gateway's run script, "
            "the loader or an interpreter, and cannot be set for a gateway"
        )
    return key


def _check_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(
            f"environment variable {key}: the value must be a string, not {type(value).__name__}"
        )
    if "\0" in value or "\n" in value:
        raise ValueError(
            f"environment variable {key}: values cannot contain NUL or newline characters"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"environment variable {key}: the value is not valid Unicode") from None
    return value


def encode_extra_env(extra_env: Mapping[str, str]) -> bytes:
    """The JSON payload ``hermes-s6 profile register`` reads on stdin.

    Raises ``ValueError`` unless every variable and the payload as a whole
    are acceptable: at most 64 variables, at most 64 KiB once encoded.
    """
    if not isinstance(extra_env, Mapping):
        raise ValueError(
            f"extra_env must be a mapping of strings to strings, not {type(extra_env).__name__}"
        )
    checked: dict[str, str] = {}
    for key, value in extra_env.items():
        checked[_check_key(key)] = _check_value(key, value)
    if len(checked) > MAX_ENV_KEYS:
        raise ValueError(
            f"extra_env has {len(checked)} variables, at most {MAX_ENV_KEYS} are allowed"
        )
    payload = json.dumps(checked, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    data = payload.encode("utf-8")
    if len(data) > MAX_ENV_BYTES:
        raise ValueError(
            f"extra_env is {len(data)} bytes once encoded, at most {MAX_ENV_BYTES} are allowed"
        )
    return data


def validate_extra_env(extra_env: Mapping[str, str]) -> None:
    """Raise ``ValueError`` unless ``extra_env`` may be given to a gateway."""
    encode_extra_env(extra_env)
