"""Inference settings: `INFERENCE_<NAME>` in Django's settings, which appliance/settings.py reads from the
configuration file's `[inference]` section or `APPLIANCE_INFERENCE_<NAME>` (docs/configuration.md); without that
setting, the environment variable, else the default. Read on each use."""

from __future__ import annotations

import os

from django.conf import settings

DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def _raw(name: str) -> object:
    if hasattr(settings, f"INFERENCE_{name}"):
        return getattr(settings, f"INFERENCE_{name}")
    return os.environ.get(f"APPLIANCE_INFERENCE_{name}")


def _integer(name: str, default: int, minimum: int) -> int:
    raw = _raw(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise ValueError(f"setting 'inference.{name.lower()}' must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ValueError(f"setting 'inference.{name.lower()}' must be at least {minimum}, got {value}")
    return value


def providers() -> list[str]:
    """The execution providers to try, in order (`inference.providers`, comma-separated in the environment)."""
    raw = _raw("PROVIDERS")
    if raw is None or raw == "":
        return list(DEFAULT_PROVIDERS)
    names = raw.split(",") if isinstance(raw, str) else list(raw)  # type: ignore[call-overload]
    return [str(name).strip() for name in names if str(name).strip()]


def batch_size() -> int:
    """Images per inference call where the model's batch axis is dynamic."""
    return _integer("BATCH", 4, 1)


def threads() -> int:
    """onnxruntime intra-op threads; 0 lets onnxruntime choose (all cores)."""
    return _integer("THREADS", 0, 0)


def stale_seconds() -> int:
    """How long a running job's worker may be silent before the job counts as abandoned and may be resumed."""
    return _integer("STALE_SECONDS", 120, 0)
