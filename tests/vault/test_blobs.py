"""The blob store: only ciphertext on disk, no partial blob ever under a blob's name, even when a writer dies.

V-222589 / V-222587: imagery at rest is encrypted (no plaintext on disk). V-222588: a blob replaced on disk is
detected. V-222585: an import that fails or is killed leaves a secure state behind: no readable partial blob,
nothing in plaintext, and its leftovers swept.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from appliance.vault.actions import create_data_key
from appliance.vault.blobs import BlobNotFound, blob_path, delete, open_blob, put, read, sweep_orphans
from appliance.vault.stream import HEADER_SIZE, BlobIdentity, BlobIntegrityError, ciphertext_size
from tests.vault.conftest import IMAGE, files_under

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def image_like(size: int) -> bytes:
    """What an upload looks like: a PNG signature and header, a flat region, then incompressible pixels."""
    head = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(17)
    flat = bytes([0x7F]) * 4096
    return head + flat + os.urandom(size - len(head) - len(flat))


def windows(data: bytes, width: int = 32) -> set[bytes]:
    return {data[i : i + width] for i in range(len(data) - width + 1)}


def test_a_blob_round_trips_with_its_sizes_and_digest(vault_dirs, settings):
    key = create_data_key(purpose="dataset:1")
    payload = os.urandom(3 * 1024 + 5)
    stored = put(key=key, identity=IMAGE, chunks=[payload[:1000], payload[1000:]], segment_size=1024)

    assert stored.plaintext_size == len(payload)
    assert stored.ciphertext_size == ciphertext_size(len(payload), 1024) == blob_path(stored.blob_id).stat().st_size
    assert stored.sha256 == hashlib.sha256(payload).hexdigest()
    assert read(key=key, identity=IMAGE, blob_id=stored.blob_id, expected_sha256=stored.sha256) == payload
    assert [len(p) for p in open_blob(key=key, identity=IMAGE, blob_id=stored.blob_id)] == [1024, 1024, 1024, 5]


def test_blobs_are_owner_only_files_in_sharded_folders(vault_dirs, settings):
    key = create_data_key(purpose="dataset:1")
    stored = put(key=key, identity=IMAGE, chunks=[b"x"])
    path = blob_path(stored.blob_id)
    assert path.relative_to(settings.VAULT_BLOB_DIR).parts == (stored.blob_id[:2], stored.blob_id[2:4], stored.blob_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_segment_size_defaults_to_the_setting(vault_dirs, settings):
    settings.VAULT_SEGMENT_SIZE = 64
    stored = put(key=create_data_key(purpose="dataset:1"), identity=IMAGE, chunks=[b"y" * 200])
    assert stored.ciphertext_size == ciphertext_size(200, 64)


def test_no_plaintext_ever_reaches_the_blob_folder(vault_dirs, settings):
    """Not one 32-byte window of the image appears in any file under the blob folder."""
    key = create_data_key(purpose="dataset:1")
    payload = image_like(256 * 1024)
    chunks = [payload[i : i + 10_000] for i in range(0, len(payload), 10_000)]
    stored = put(key=key, identity=IMAGE, chunks=chunks, segment_size=64 * 1024)
    # A failed write as well, to cover the temporary file's life.
    with pytest.raises(RuntimeError):
        put(key=key, identity=IMAGE, chunks=_failing_after(chunks, 20), segment_size=64 * 1024)

    plaintext_windows = windows(payload)
    files = files_under(settings.VAULT_BLOB_DIR)
    assert [path.name for path in files] == [stored.blob_id]
    for path in files:
        content = path.read_bytes()
        leaked = [i for i in range(len(content) - 31) if content[i : i + 32] in plaintext_windows]
        assert not leaked, f"{path} holds plaintext at offsets {leaked[:5]}"
    assert read(key=key, identity=IMAGE, blob_id=stored.blob_id) == payload


def _failing_after(chunks: list[bytes], n: int) -> Iterator[bytes]:
    yield from chunks[:n]
    raise RuntimeError("the upload broke off")


def test_an_error_mid_stream_leaves_no_file_at_all(vault_dirs, settings):
    key = create_data_key(purpose="dataset:1")
    chunks = [os.urandom(50_000) for _ in range(10)]
    with pytest.raises(RuntimeError, match="broke off"):
        put(key=key, identity=IMAGE, chunks=_failing_after(chunks, 6), segment_size=64 * 1024)
    assert files_under(settings.VAULT_BLOB_DIR) == []


KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    import django
    django.setup()
    from pathlib import Path
    from appliance.vault.blobs import put
    from appliance.vault.keys import FileKeyProvider
    from appliance.vault.models import DataKey
    from appliance.vault.stream import BlobIdentity

    provider = FileKeyProvider(Path(sys.argv[1]))
    key = DataKey(purpose="dataset:1", wrapped=provider.wrap(os.urandom(32)), kek_provider="file",
                  kek_id=provider.key_id)

    def chunks():
        yield os.urandom(3 << 20)
        print("written", flush=True)
        time.sleep(120)

    put(key=key, identity=BlobIdentity("dataset:1", "item:1", "image"), chunks=chunks(), provider=provider)
    """
)


def test_a_killed_writer_leaves_only_ciphertext_that_no_reader_opens_and_the_sweep_removes(vault_dirs, file_kek):
    blob_dir = vault_dirs / "blobs"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "appliance.settings", "APPLIANCE_VAULT_BLOB_DIR": str(blob_dir)}
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(file_kek.path)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "written"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    [leftover] = files_under(blob_dir)
    assert leftover.name.endswith(".partial")
    assert leftover.stat().st_size >= HEADER_SIZE + 2 * ((1 << 20) + 16)  # two sealed segments had been written
    with pytest.raises(ValueError, match="not a blob id"):
        blob_path(leftover.name)

    assert sweep_orphans() == []  # too young: it could still be a running writer's
    old = time.time() - 2 * 3600
    os.utime(leftover, (old, old))
    assert sweep_orphans(older_than=timedelta(minutes=60)) == [leftover]
    assert files_under(blob_dir) == []


def test_a_blob_under_another_items_name_is_refused(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    stored = put(key=key, identity=IMAGE, chunks=[b"item ten"])
    other = BlobIdentity(dataset=IMAGE.dataset, item="item:11", kind="image")
    with pytest.raises(BlobIntegrityError) as caught:
        read(key=key, identity=other, blob_id=stored.blob_id)
    assert caught.value.reason == "authentication"


def test_a_blob_read_with_another_datasets_key_is_refused(vault_dirs):
    mine, theirs = create_data_key(purpose="dataset:1"), create_data_key(purpose="dataset:2")
    stored = put(key=mine, identity=IMAGE, chunks=[b"dataset one"])
    with pytest.raises(BlobIntegrityError):
        read(key=theirs, identity=IMAGE, blob_id=stored.blob_id)


def test_an_older_blob_of_the_same_item_put_back_in_place_is_caught_by_the_digest(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    old = put(key=key, identity=IMAGE, chunks=[b"version 1"])
    new = put(key=key, identity=IMAGE, chunks=[b"version 2"])
    blob_path(new.blob_id).write_bytes(blob_path(old.blob_id).read_bytes())
    with pytest.raises(BlobIntegrityError) as caught:
        read(key=key, identity=IMAGE, blob_id=new.blob_id, expected_sha256=new.sha256)
    assert caught.value.reason == "digest"


def test_a_tampered_blob_file_is_refused(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    stored = put(key=key, identity=IMAGE, chunks=[os.urandom(5000)], segment_size=1024)
    path = blob_path(stored.blob_id)
    content = bytearray(path.read_bytes())
    content[HEADER_SIZE + 1500] ^= 0x10
    path.write_bytes(bytes(content))
    with pytest.raises(BlobIntegrityError) as caught:
        read(key=key, identity=IMAGE, blob_id=stored.blob_id)
    assert (caught.value.reason, caught.value.segment) == ("authentication", 1)


def test_deleting_a_blob_removes_its_file(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    stored = put(key=key, identity=IMAGE, chunks=[b"x"])
    assert delete(blob_id=stored.blob_id) is True
    assert delete(blob_id=stored.blob_id) is False
    with pytest.raises(BlobNotFound):
        read(key=key, identity=IMAGE, blob_id=stored.blob_id)


@pytest.mark.parametrize("blob_id", ["../../etc/passwd", "A" * 32, "0" * 31, "0" * 32 + ".partial", ""])
def test_a_blob_id_can_never_name_another_file(vault_dirs, blob_id):
    with pytest.raises(ValueError, match="not a blob id"):
        blob_path(blob_id)


def test_storing_and_reading_64_mib_holds_only_a_few_segments(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    block, total, segment = os.urandom(64 << 10), 64 << 20, 1 << 20

    def upload() -> Iterator[bytes]:
        for _ in range(total // len(block)):
            yield block

    tracemalloc.start()
    try:
        stored = put(key=key, identity=IMAGE, chunks=upload(), segment_size=segment)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        size = sum(len(p) for p in open_blob(key=key, identity=IMAGE, blob_id=stored.blob_id))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == stored.plaintext_size == total
    assert put_peak < 3.5 * segment, put_peak
    assert read_peak < 3.5 * segment, read_peak
