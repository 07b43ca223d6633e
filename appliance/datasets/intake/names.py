"""Checks on the names that arrive with files: upload file names and the paths stored inside archives.

Why: a name is attacker-controlled text that later code may join to a path, show in a page, or use to guess a
type. `..` components and absolute paths are the classic "zip slip" (CVE-2018-1002200 and its many siblings); a
backslash or a drive letter is the same attack aimed at Windows tools that may handle an export later; control and
direction-override characters forge what a reviewer sees (`photo\u202egnp.exe` displays as `photoexe.png`).
Nothing here touches a filesystem: these are pure functions over strings.
"""

from __future__ import annotations

import re
import unicodedata

from appliance.datasets.intake.outcomes import BIDI_CONTROLS

# Longer names are not imagery anyone typed; the cap also bounds every message that quotes a name.
MAX_NAME_CHARS = 1024

_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


def name_problem(name: str) -> str | None:
    """Return why a name is unsafe to show or store (control or direction characters, length), or None."""
    if not name:
        return "the name is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"the name is longer than {MAX_NAME_CHARS} characters"
    if any(char in BIDI_CONTROLS for char in name):
        return "the name contains Unicode direction-override characters, which can disguise its extension"
    if any(unicodedata.category(char) in {"Cc", "Cs", "Zl", "Zp"} for char in name):
        return "the name contains control characters"
    return None


def member_path_problem(name: str) -> str | None:
    """Return why an archive member's path is unsafe (it could land outside the import), or None.

    The appliance never writes members to disk, but the path is kept as the item's original name and may be used
    by an export or by a person's tools later; an unsafe path is refused here, once, rather than trusted later.
    """
    problem = name_problem(name)
    if problem:
        return problem
    if "\\" in name:
        return "its path contains a backslash (a Windows path separator that can escape the archive on Windows)"
    if name.startswith("/"):
        return "its path is absolute"
    if _DRIVE_LETTER.match(name):
        return "its path starts with a Windows drive letter"
    if ".." in name.split("/"):
        return "its path climbs out of the archive with a '..' component (zip slip)"
    return None


def normalise_member_path(name: str) -> str:
    """Drop empty and `.` components, so `a//./b.png` and `a/b.png` are recognised as one name."""
    return "/".join(part for part in name.split("/") if part not in {"", "."})


def collision_key(path: str) -> str:
    """The form under which two names collide on common filesystems (case-insensitive, Unicode-normalised)."""
    return unicodedata.normalize("NFC", path).casefold()


def skip_reason(path: str) -> str | None:
    """Return why a member is operating-system clutter to skip (not an error), or None to import it."""
    parts = path.split("/")
    if "__MACOSX" in parts:
        return "macOS resource data (__MACOSX), not imagery"
    if any(part.startswith(".") for part in parts):
        return "hidden file or folder (name starts with a dot), not imagery"
    return None


def extension(name: str) -> str:
    """The lower-case extension of the last path component, with its dot; empty when there is none."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = last.rpartition(".")
    if not dot or not stem:
        return ""
    return "." + ext.lower()
