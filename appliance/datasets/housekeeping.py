"""Removing blob files that no row names: what an import killed before its commit, or a crash right after a
dataset's deletion, leaves behind.

Such a file is complete ciphertext whose identity and digest no row records; it is deleted only once older than a
grace period, so that an import in progress (which writes its blobs before its rows) is never touched.
Temporary `.partial` files and spool files are the vault's to sweep (`appliance.vault.blobs.sweep_orphans`).
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

from appliance.datasets.models import Item
from appliance.vault import blobs

_BLOB_NAME = re.compile(r"[0-9a-f]{32}")
GRACE = timedelta(hours=6)


def referenced_blob_ids() -> set[str]:
    referenced: set[str] = set()
    for row in Item.objects.values_list("image_blob", "thumbnail_blob", "preview_blob").iterator(chunk_size=5000):
        referenced.update(blob for blob in row if blob)
    return referenced


def sweep_unreferenced_blobs(*, older_than: timedelta = GRACE) -> list[Path]:
    """Delete blob files older than `older_than` that no item names; return them."""
    root = blobs.blob_root()
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    referenced = referenced_blob_ids()
    removed = []
    for path in root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
        if _BLOB_NAME.fullmatch(path.name) and path.name not in referenced and path.stat().st_mtime <= cutoff:
            blobs.delete(blob_id=path.name)
            removed.append(path)
    return removed
