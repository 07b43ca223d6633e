"""PicoDet-style layout detectors (GFL head exported without post-processing), e.g. the CDLA layout model.

Outputs: one class-score map per stride ([B, N_s, classes], already sigmoid) followed by one box-distribution map
per stride ([B, N_s, 4 * (reg_max + 1)]). For each anchor point the four distances (left, top, right, bottom)
are the expectations of softmax distributions over 0..reg_max, times the stride, from the cell centre. Then a
score threshold and class-wise NMS, as PaddleDetection's own post-processing does, written here in numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from appliance.inference.decoders.base import Proposal, box_proposal, classwise_nms
from appliance.inference.preprocess import Transform

DEFAULT_STRIDES = (8, 16, 32, 64)


def _centres(height: int, width: int, stride: int) -> np.ndarray:
    rows, cols = math.ceil(height / stride), math.ceil(width / stride)
    ys, xs = np.meshgrid(np.arange(rows, dtype=np.float32), np.arange(cols, dtype=np.float32), indexing="ij")
    return np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)


def _distances(distribution: np.ndarray, stride: int) -> np.ndarray:
    bins = distribution.shape[-1] // 4
    logits = distribution.reshape(-1, 4, bins)
    logits = logits - logits.max(axis=2, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=2, keepdims=True)
    return (weights * np.arange(bins, dtype=np.float32)).sum(axis=2) * stride


def decode(
    outputs: Sequence[np.ndarray],
    transforms: Sequence[Transform],
    *,
    classes: Sequence[str],
    input_size: tuple[int, int],
    strides: Sequence[int] = DEFAULT_STRIDES,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    max_candidates: int = 1000,
    max_detections: int = 100,
) -> list[list[Proposal]]:
    levels = len(outputs) // 2
    if levels != len(strides) or len(outputs) != 2 * levels:
        raise ValueError(f"expected {2 * len(strides)} outputs (scores then boxes per stride), got {len(outputs)}")
    height, width = input_size
    results: list[list[Proposal]] = []
    for index, transform in enumerate(transforms):
        all_boxes, all_scores = [], []
        for level, stride in enumerate(strides):
            scores = outputs[level][index]
            centres = _centres(height, width, stride)
            if centres.shape[0] != scores.shape[0]:
                raise ValueError(f"stride {stride}: {scores.shape[0]} anchors, expected {centres.shape[0]}")
            best = scores.max(axis=1)
            top = np.argsort(-best, kind="stable")[:max_candidates]
            top = top[best[top] > score_threshold]
            if top.size == 0:
                continue
            distance = _distances(outputs[levels + level][index][top], stride)
            centre = centres[top]
            all_boxes.append(np.concatenate([centre - distance[:, :2], centre + distance[:, 2:]], axis=1))
            all_scores.append(scores[top])
        if not all_boxes:
            results.append([])
            continue
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        # every (anchor, class) pair over the threshold is a candidate, as in the reference post-processing
        anchors, labels = np.nonzero(scores > score_threshold)
        candidate_boxes, candidate_scores = boxes[anchors], scores[anchors, labels]
        keep = classwise_nms(candidate_boxes, candidate_scores, labels, iou_threshold, max_detections)
        x0, y0 = transform.to_original(candidate_boxes[keep, 0], candidate_boxes[keep, 1])
        x1, y1 = transform.to_original(candidate_boxes[keep, 2], candidate_boxes[keep, 3])
        results.append(
            [
                box_proposal(float(a), float(b), float(c), float(d), classes[int(k)], float(s))
                for a, b, c, d, k, s in zip(x0, y0, x1, y1, labels[keep], candidate_scores[keep], strict=True)
                if c - a >= 1 and d - b >= 1
            ]
        )
    return results
