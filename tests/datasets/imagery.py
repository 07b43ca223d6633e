"""Real images made in memory for the import tests: small, distinct, each format the appliance accepts."""

from __future__ import annotations

import io
import random
import zipfile

from PIL import Image


def image_bytes(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (96, 64)) -> bytes:
    """A noisy image (so no two seeds give the same bytes, and no 32-byte window is trivially repeated)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test pixels, not secrets
    image = Image.frombytes("RGB", size, bytes(rng.randrange(256) for _ in range(size[0] * size[1] * 3)))
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()
