"""The two verdicts intake gives besides acceptance: refused (`Rejected`) and deliberately left out (`Skipped`).

Why a dedicated exception with a name and a reason: an import must tell a manager exactly which file failed and
what to do about it (STIG V-222610: error messages give what is needed to correct the input, no more), and the
upload view, the API and `manage.py datasets import` must all say it the same way. Names come from uploaders and
archive headers, so anything shown to a person passes through `printable()` first: a control character or a
right-to-left override in a name must not rewrite the line it is shown on.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Characters that reorder how text is displayed; "photo\u202egnp.exe" shows as "photoexe.png".
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """Return `text` with control, format and direction characters written as escapes, safe to show on one line."""
    out = []
    for char in text:
        if char in BIDI_CONTROLS or unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"}:
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


class Rejected(Exception):
    """A file or archive member that must not be imported; `reason` says why in words a manager can act on.

    Raised by `inspect_image` and, for problems that condemn a whole archive, by `iter_archive`; yielded (not
    raised) by `iter_archive` for a single bad member so that one import can report every problem at once.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, reason)
        self.name = name
        self.reason = reason

    def __str__(self) -> str:
        return f"{printable(self.name)}: {self.reason}"


@dataclass(frozen=True)
class Skipped:
    """An archive member left out on purpose (operating-system clutter such as `__MACOSX/` or `.DS_Store`).

    Skipping is not an error: those files are never imagery, and refusing the archive for them would only teach
    people to ignore refusals. They are still listed so that nothing disappears silently.
    """

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{printable(self.name)}: {self.reason}"
