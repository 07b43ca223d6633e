"""Model outputs to proposals, one module per decoder family, all numpy and Django-free.

`decode(manifest, outputs, transforms)` is the one entry point: it picks the family the manifest names and
returns, per image, the proposals in the original image's pixels. No decoder knows about annotations, projects
or thresholds per project: it reports what the model saw and how sure it was; the job decides what to keep.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from appliance.inference.decoders import classifier, dbnet, picodet, yolo
from appliance.inference.decoders.base import Proposal
from appliance.inference.manifest import Manifest, ManifestError
from appliance.inference.preprocess import Transform

__all__ = ["Proposal", "check_params", "decode"]

_FAMILIES: dict[str, Callable[..., Any]] = {
    "picodet": picodet.decode,
    "dbnet": dbnet.decode,
    "yolo": yolo.decode,
    "classifier": classifier.decode,
}
# What the dispatcher passes itself; a manifest's `decode` holds only the tunable rest.
_SUPPLIED = {"outputs", "output", "transforms", "classes", "class_name", "input_size"}


def check_params(manifest: Manifest) -> None:
    """Refuse a manifest whose `decode` names a parameter its decoder family does not take (at import, not at the
    first image)."""
    accepted = set(inspect.signature(_FAMILIES[manifest.decoder]).parameters) - _SUPPLIED
    unknown = sorted(set(manifest.decode) - accepted)
    if unknown:
        raise ManifestError(
            f"manifest 'decode' has parameter(s) {', '.join(unknown)} that the {manifest.decoder} decoder does not "
            f"take (it takes: {', '.join(sorted(accepted))})"
        )


def decode(manifest: Manifest, outputs: Sequence[np.ndarray], transforms: Sequence[Transform]) -> list[list[Proposal]]:
    """Proposals per image of the batch, for the decoder family the manifest names."""
    params = manifest.decode
    classes = manifest.classes
    size = manifest.input.size
    if manifest.decoder == "picodet":
        return picodet.decode(outputs, transforms, classes=classes, input_size=size, **params)
    if manifest.decoder == "dbnet":
        return dbnet.decode(outputs[0], transforms, class_name=classes[0], **params)
    if manifest.decoder == "yolo":
        return yolo.decode(outputs[0], transforms, classes=classes, input_size=size, **params)
    return classifier.decode(outputs[0], classes=classes, input_size=size, **params)
