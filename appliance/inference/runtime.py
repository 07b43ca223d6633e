"""onnxruntime sessions: one per model per process, built on first use from the decrypted model file, reused.

The provider order comes from `inference.providers` (conf.py; default CUDA, then CPU). onnxruntime-gpu lists
CUDA as available even where its libraries are missing, and then falls back to the CPU with only a log line, so
the provider reported is the one the session actually got (`session.get_providers()[0]`), never the one asked
for. The model's bytes are decrypted into memory and handed to onnxruntime directly: no plaintext file.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from appliance.inference import conf
from appliance.inference.actions import model_identity
from appliance.inference.manifest import Manifest, canonical_bytes, parse_manifest
from appliance.inference.models import RegisteredModel
from appliance.vault import blobs

# onnxruntime's own log goes to stderr unstructured; errors only (a CUDA fallback shows in the reported provider).
ort.set_default_logger_severity(3)


def configured_providers() -> list[str]:
    """The configured order, narrowed to what this onnxruntime build offers (CPU always stays last resort)."""
    wanted = conf.providers()
    available = set(ort.get_available_providers())
    chosen = [name for name in wanted if name in available]
    return chosen or ["CPUExecutionProvider"]


@dataclass
class Loaded:
    """A ready session and what to feed it."""

    session: ort.InferenceSession
    manifest: Manifest
    provider: str
    input_name: str
    output_names: list[str]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return list(self.session.run(self.output_names, {self.input_name: batch}))


_sessions: dict[tuple[int, str], Loaded] = {}
_lock = threading.Lock()


def session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the CUDA fallback warning is reported through `provider`
    threads = conf.threads()
    if threads:
        options.intra_op_num_threads = threads
    return options


def build(model_bytes: bytes, manifest: Manifest, providers: Sequence[str]) -> Loaded:
    session = ort.InferenceSession(model_bytes, sess_options=session_options(), providers=list(providers))
    return Loaded(
        session=session,
        manifest=manifest,
        provider=session.get_providers()[0],
        input_name=session.get_inputs()[0].name,
        output_names=[o.name for o in session.get_outputs()],
    )


def load(model: RegisteredModel) -> Loaded:
    """This process's session for `model`, built once (decrypting and checking the file against its digest)."""
    key = (model.pk, model.sha256)
    with _lock:
        if key not in _sessions:
            data = blobs.read(
                key=model.data_key,
                identity=model_identity(model.ref),
                blob_id=model.blob_id,
                expected_sha256=model.sha256,
            )
            manifest = parse_manifest(canonical_bytes(model.manifest))
            _sessions[key] = build(data, manifest, configured_providers())
        return _sessions[key]


def forget_all() -> None:
    """Drop every cached session (tests; a retired model's session is dropped by the next process anyway)."""
    with _lock:
        _sessions.clear()
