"""The import plan: identical images are imported once and every other file is accounted for, so a failed import
reports every problem at once."""

from __future__ import annotations

import hashlib
import io
import tarfile

from PIL import Image

from appliance.datasets.intake import (
    ArchiveLimits,
    Duplicate,
    ImageLimits,
    Rejected,
    Skipped,
    inspect_archive,
    inspect_files,
    inspect_image,
    plan_import,
)
from tests.datasets.intake.builders import image_bytes, tar_bytes, tar_special, zip_bytes

IMAGES = ImageLimits()
ARCHIVES = ArchiveLimits()
PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")
WEBP = image_bytes("WEBP")


def test_the_same_bytes_under_other_names_are_duplicates_of_the_first() -> None:
    """V-222606: one item per distinct image; each later copy names the first, matched by SHA-256."""
    plan = inspect_files([("a.png", PNG), ("b.jpg", JPEG), ("copy-of-a.png", PNG), ("again/a.png", PNG)], limits=IMAGES)
    assert [facts.name for facts in plan.accepted] == ["a.png", "b.jpg"]
    digest = hashlib.sha256(PNG).hexdigest()
    assert plan.duplicates == (Duplicate("copy-of-a.png", "a.png", digest), Duplicate("again/a.png", "a.png", digest))
    assert "copy-of-a.png: the same image as a.png" in plan.report()[0]
    assert plan.ok


def test_the_same_pixels_in_different_bytes_are_not_duplicates() -> None:
    """Duplicates are byte-identical files; a re-encoded copy is a different file and is imported."""
    first = image_bytes("PNG", size=(20, 20))
    recompressed = io.BytesIO()
    Image.open(io.BytesIO(first)).save(recompressed, "PNG", compress_level=1)
    assert recompressed.getvalue() != first
    plan = inspect_files([("a.png", first), ("b.png", recompressed.getvalue())], limits=IMAGES)
    assert len(plan.accepted) == 2
    assert not plan.duplicates


def test_a_plan_with_any_refusal_is_not_ok_and_lists_every_refusal() -> None:
    """V-222610: every problem is reported at once, each naming the file and what to do."""
    plan = inspect_files(
        [("a.png", PNG), ("b.png", JPEG), ("c.gif", image_bytes("GIF")), ("d.webp", WEBP)], limits=IMAGES
    )
    assert not plan.ok
    assert [item.name for item in plan.rejected] == ["b.png", "c.gif"]
    assert [facts.name for facts in plan.accepted] == ["a.png", "d.webp"]
    report = plan.report()
    assert report[0] == "rejected: b.png: the file is a JPEG image, but its name says PNG"
    assert report[1].startswith("rejected: c.gif: the file is a GIF image")


def test_an_empty_plan_is_not_ok() -> None:
    plan = plan_import([Skipped(".DS_Store", "hidden file")])
    assert not plan.ok
    assert plan.report()[-1] == "nothing to import: no images were found"


def test_plan_import_sorts_given_verdicts_in_order() -> None:
    first = inspect_image("a.png", PNG, limits=IMAGES)
    copy = inspect_image("z.png", PNG, limits=IMAGES)
    refused = Rejected("bad.png", "reason")
    skipped = Skipped("__MACOSX/x", "clutter")
    plan = plan_import([skipped, first, refused, copy])
    assert plan.accepted == (first,)
    assert plan.duplicates == (Duplicate("z.png", "a.png", first.sha256),)
    assert plan.rejected == (refused,)
    assert plan.skipped == (skipped,)


def test_an_archive_plan_accounts_for_every_member() -> None:
    """One archive holding a bit of everything: the plan says what becomes of each member."""
    nested = zip_bytes([("inner.png", PNG)])
    data = tar_bytes(
        [
            ("survey/a.png", PNG),
            ("survey/b.jpg", JPEG),
            ("survey/copy.png", PNG),
            ("survey/._a.png", b"\0\5\26\7"),
            ("../../escape.png", PNG),
            tar_special("survey/link.png", tarfile.SYMTYPE, "/etc/shadow"),
            ("survey/inner.zip", nested),
            ("survey/liar.webp", JPEG),
        ],
        mode="w:gz",
    )
    plan = inspect_archive(io.BytesIO(data), name="survey.tgz", archive_limits=ARCHIVES, image_limits=IMAGES)
    assert [facts.name for facts in plan.accepted] == ["survey/a.png", "survey/b.jpg"]
    assert plan.duplicates == (Duplicate("survey/copy.png", "survey/a.png", hashlib.sha256(PNG).hexdigest()),)
    assert [item.name for item in plan.skipped] == ["survey/._a.png"]
    reasons = {item.name: item.reason for item in plan.rejected}
    assert set(reasons) == {"../../escape.png", "survey/link.png", "survey/inner.zip", "survey/liar.webp"}
    assert "zip slip" in reasons["../../escape.png"]
    assert "symbolic link" in reasons["survey/link.png"]
    assert "ZIP archive" in reasons["survey/inner.zip"]
    assert "never expanded" in reasons["survey/inner.zip"]
    assert "its name says WebP" in reasons["survey/liar.webp"]
    assert not plan.ok


def test_a_refusal_of_the_whole_archive_ends_the_plan_with_it() -> None:
    data = zip_bytes([(f"{index}.png", image_bytes("PNG", size=(8 + index, 8))) for index in range(4)])
    plan = inspect_archive(
        io.BytesIO(data), name="many.zip", archive_limits=ArchiveLimits(max_members=3), image_limits=IMAGES
    )
    assert plan.accepted == ()
    assert [(item.name, "more than 3" in item.reason or "declares 4" in item.reason) for item in plan.rejected] == [
        ("many.zip", True)
    ]
    assert not plan.ok
