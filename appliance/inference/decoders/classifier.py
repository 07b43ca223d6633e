"""Image classifiers: one output [B, classes] of logits or probabilities, to image-level tags.

Rows that are already a distribution (non-negative, summing to 1) are used as they are; anything else is taken
as logits and put through a softmax. The top `top_k` classes at or above `score_threshold` become tags.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.inference.decoders.base import Proposal


def probabilities(row: np.ndarray) -> np.ndarray:
    if row.min() >= 0 and abs(float(row.sum()) - 1.0) < 1e-3:
        return row
    shifted = np.exp(row - row.max())
    return shifted / shifted.sum()


def decode(
    output: np.ndarray,
    *,
    classes: Sequence[str],
    input_size: tuple[int, int] = (0, 0),
    score_threshold: float = 0.5,
    top_k: int = 1,
) -> list[list[Proposal]]:
    if output.ndim != 2 or output.shape[1] != len(classes):
        raise ValueError(f"expected [B, {len(classes)}], got {list(output.shape)}")
    results: list[list[Proposal]] = []
    for row in output.astype(np.float64):
        probs = probabilities(row)
        order = np.argsort(-probs, kind="stable")[:top_k]
        results.append(
            [Proposal("tag", None, classes[int(i)], float(probs[i])) for i in order if probs[i] >= score_threshold]
        )
    return results
