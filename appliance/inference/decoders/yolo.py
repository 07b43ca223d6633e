"""YOLO v8/v11 detection heads exported to ONNX: one output [B, 4 + classes, N] of centre-x, centre-y, width,
height (input pixels) and per-class scores (already sigmoid), no objectness. Score threshold, then class-wise
NMS, then back to the original image through the letterbox or stretch transform."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.inference.decoders.base import Proposal, box_proposal, classwise_nms
from appliance.inference.preprocess import Transform


def decode(
    output: np.ndarray,
    transforms: Sequence[Transform],
    *,
    classes: Sequence[str],
    input_size: tuple[int, int] = (0, 0),
    score_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 300,
) -> list[list[Proposal]]:
    if output.ndim != 3 or output.shape[1] != 4 + len(classes):
        raise ValueError(f"expected [B, {4 + len(classes)}, N] for {len(classes)} classes, got {list(output.shape)}")
    results: list[list[Proposal]] = []
    for index, transform in enumerate(transforms):
        rows = output[index].T  # [N, 4 + classes]
        scores = rows[:, 4:]
        labels = scores.argmax(axis=1)
        best = scores[np.arange(rows.shape[0]), labels]
        mask = best > score_threshold
        if not mask.any():
            results.append([])
            continue
        cx, cy, w, h = (rows[mask, i] for i in range(4))
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        keep = classwise_nms(boxes, best[mask], labels[mask], iou_threshold, max_detections)
        x0, y0 = transform.to_original(boxes[keep, 0], boxes[keep, 1])
        x1, y1 = transform.to_original(boxes[keep, 2], boxes[keep, 3])
        results.append(
            [
                box_proposal(float(a), float(b), float(c), float(d), classes[int(k)], float(s))
                for a, b, c, d, k, s in zip(x0, y0, x1, y1, labels[mask][keep], best[mask][keep], strict=True)
                if c - a >= 1 and d - b >= 1
            ]
        )
    return results
