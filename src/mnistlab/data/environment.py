"""The environment variables that steer loading: offline mode and time limits."""

from __future__ import annotations

import os

from mnistlab.errors import MnistlabError

HTTP_TIMEOUT_S = 15.0
PIP_TIMEOUT_S = 300.0


def offline() -> bool:
    """``$MNISTLAB_OFFLINE`` is set: never reach the internet unasked."""
    return os.environ.get("MNISTLAB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    """The positive number of seconds in ``$name``, or ``default`` when it is unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise MnistlabError(f"${name}={raw!r} is not a positive number of seconds; fix or unset it")
    return value
