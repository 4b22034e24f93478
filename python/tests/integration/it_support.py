"""Helpers of the integration tests."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Polls ``condition`` until it holds; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def unique_name(tag: str) -> str:
    return f"pyit-{tag}-{secrets.token_hex(4)}"
