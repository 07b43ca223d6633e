"""DBNet text detection (PP-OCR det): a probability map [B, 1, H, W] to one box per text line.

Threshold the map, dilate by 2x2 (joins glyphs split by a thin gap), take 8-connected components, keep those
whose mean probability is high enough, then "unclip": grow each box by area * ratio / perimeter, because DBNet
is trained on shrunk text regions. Components are found row-run by row-run with a union-find over runs, so the
Python loop is over runs (a few per text line per row), not over pixels. With `shape="polygon"` each line is the
unclipped minimum-area rectangle of its component (four corners), which follows the lines of a skewed scan where
an axis-aligned box would also cover its neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.inference.decoders.base import Proposal, box_proposal
from appliance.inference.preprocess import Transform


def _runs(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) columns of the True runs of a boolean row."""
    padded = np.concatenate(([False], row, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges[0::2], edges[1::2]


def components(mask: np.ndarray) -> list[tuple[int, int, int, int, list[tuple[int, int, int]]]]:
    """8-connected components of `mask`: (x0, y0, x1, y1) exclusive, and their runs (row, start, end)."""
    parent: list[int] = []
    runs: list[tuple[int, int, int]] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[int] = []
    for y in range(mask.shape[0]):
        starts, ends = _runs(mask[y])
        current: list[int] = []
        j = 0
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            index = len(runs)
            runs.append((y, start, end))
            parent.append(index)
            current.append(index)
            # previous-row runs touching [start - 1, end] (8-connectivity)
            while j < len(previous) and runs[previous[j]][2] < start:
                j += 1
            k = j
            while k < len(previous) and runs[previous[k]][1] <= end:
                a, b = find(index), find(previous[k])
                if a != b:
                    parent[max(a, b)] = min(a, b)
                k += 1
        previous = current
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(find(index), []).append(run)
    found = []
    for members in groups.values():
        ys = [r[0] for r in members]
        found.append((min(r[1] for r in members), min(ys), max(r[2] for r in members), max(ys) + 1, members))
    return found


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (Andrew's monotone chain) of integer points, counter-clockwise."""
    unique = np.unique(points, axis=0)
    if len(unique) < 3:
        return unique.astype(np.float64)
    ordered = [tuple(p) for p in unique.tolist()]

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in ordered:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(ordered):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.asarray(lower[:-1] + upper[:-1], dtype=np.float64)


def min_area_rect(points: np.ndarray, grow: float = 0.0) -> np.ndarray:
    """The four corners of the smallest rectangle holding `points` (rotating calipers over the hull's edge
    directions), each side pushed out by `grow`."""
    hull = _hull(points)
    best: tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    for i in range(len(hull)):
        edge = hull[(i + 1) % len(hull)] - hull[i]
        length = float(np.hypot(edge[0], edge[1]))
        if length == 0:
            continue
        u = edge / length
        v = np.array([-u[1], u[0]])
        a, b = hull @ u, hull @ v
        area = float((a.max() - a.min()) * (b.max() - b.min()))
        if best is None or area < best[0]:
            best = (area, u, v, np.array([a.min(), a.max()]), np.array([b.min(), b.max()]))
    if best is None:  # a single point or a segment along an axis
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        u, v, ends_u, ends_v = np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([x0, x1]), np.array([y0, y1])
    else:
        _, u, v, ends_u, ends_v = best
    lo_u, hi_u = ends_u[0] - grow, ends_u[1] + grow
    lo_v, hi_v = ends_v[0] - grow, ends_v[1] + grow
    return np.array([lo_u * u + lo_v * v, hi_u * u + lo_v * v, hi_u * u + hi_v * v, lo_u * u + hi_v * v])


def _polygon(
    members: list[tuple[int, int, int]], transform: Transform, unclip_ratio: float, class_name: str, score: float
) -> Proposal | None:
    """The component's unclipped minimum-area rectangle, in the original image's pixels."""
    extremes: dict[int, tuple[int, int]] = {}
    for row, start, end in members:  # only each row's outermost pixels can be on the hull
        low, high = extremes.get(row, (start, end))
        extremes[row] = (min(low, start), max(high, end))
    corners = np.array(
        [(x, row + dy) for row, (start, end) in extremes.items() for x in (start, end) for dy in (0, 1)],
        dtype=np.float64,
    )
    rect = min_area_rect(corners)
    w, h = float(np.hypot(*(rect[1] - rect[0]))), float(np.hypot(*(rect[3] - rect[0])))
    if w + h == 0:
        return None
    grown = min_area_rect(corners, grow=w * h * unclip_ratio / (2 * (w + h)))
    xs, ys = transform.to_original(grown[:, 0], grown[:, 1])
    points = [[round(float(x), 2), round(float(y), 2)] for x, y in zip(xs, ys, strict=True)]
    if len({tuple(p) for p in points}) < 4:
        return None
    return Proposal("polygon", points, class_name, score)


def decode(
    output: np.ndarray,
    transforms: Sequence[Transform],
    *,
    class_name: str,
    threshold: float = 0.3,
    box_threshold: float = 0.5,
    unclip_ratio: float = 1.6,
    min_size: int = 3,
    max_candidates: int = 1000,
    shape: str = "box",
) -> list[list[Proposal]]:
    if shape not in ("box", "polygon"):
        raise ValueError(f"dbnet shape must be 'box' or 'polygon', got {shape!r}")
    if output.ndim != 4 or output.shape[1] != 1:
        raise ValueError(f"expected a probability map [B, 1, H, W], got {list(output.shape)}")
    results: list[list[Proposal]] = []
    for index, transform in enumerate(transforms):
        prob = output[index, 0]
        mask = prob > threshold
        dilated = mask.copy()
        dilated[1:, :] |= mask[:-1, :]
        dilated[:, 1:] |= mask[:, :-1]
        dilated[1:, 1:] |= mask[:-1, :-1]
        proposals: list[Proposal] = []
        for x0, y0, x1, y1, members in components(dilated)[:max_candidates]:
            w, h = x1 - x0, y1 - y0
            if min(w, h) < min_size:
                continue
            score = float(np.mean(np.concatenate([prob[y, a:b] for y, a, b in members])))
            if score < box_threshold:
                continue
            if shape == "polygon":
                polygon = _polygon(members, transform, unclip_ratio, class_name, score)
                if polygon is not None:
                    proposals.append(polygon)
                continue
            grow = w * h * unclip_ratio / (2 * (w + h))
            ox0, oy0 = transform.to_original(np.asarray([x0 - grow]), np.asarray([y0 - grow]))
            ox1, oy1 = transform.to_original(np.asarray([x1 + grow]), np.asarray([y1 + grow]))
            if ox1[0] - ox0[0] >= 1 and oy1[0] - oy0[0] >= 1:
                proposals.append(
                    box_proposal(float(ox0[0]), float(oy0[0]), float(ox1[0]), float(oy1[0]), class_name, score)
                )
        results.append(proposals)
    return results
