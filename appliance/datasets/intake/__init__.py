"""Safe intake of imagery: decides, from bytes alone, what an upload or an archive may bring into the appliance.

This package owns the validation of imported files and nothing else. It never imports Django, never touches the
database and never writes to disk: everything is a pure function over bytes or a stream read forward, because
plaintext imagery must not reach the disk and because the upload view, the API and `manage.py datasets import`
must all apply exactly the same rules. Storing, encrypting and auditing the result is the caller's job.

Threat model — what an uploaded file may try, and the check that stops it:

- Pass as an image when it is something else (an executable, an HTML page, an SVG with script, a PDF): the format
  comes from the magic bytes and must be confirmed by Pillow's decoder for that one format; only JPEG, PNG, TIFF
  and WebP are accepted. `images.inspect_image`.
- Disguise its type with its name (a JPEG called `.png`, `photo\u202egnp.exe`): the extension must match the
  detected format; direction-override and control characters in names are refused. `images`, `names`.
- Exhaust memory or time while decoding (a decompression bomb: a tiny file declaring a huge raster): a pixel cap
  read from the header before decoding, and Pillow's own bomb warning turned into an error in a local scope.
- Be truncated or damaged so a decoder fills in pixels nobody captured: the container is walked to its logical
  end (PNG chunk CRCs, JPEG markers, RIFF length) and every pixel is decoded; Pillow's "load truncated images"
  switch is refused.
- Carry a second payload (a polyglot: an image that is also a ZIP or JAR, has HTML or script inside, or has bytes
  after its end): refused, naming what was found. In a classified enclave this also stops data hidden beside the
  pixels from being stored and exported under a label nobody checked.
- Hide further images (multi-page TIFF, animation, multi-picture JPEG, TIFF sub-images): refused, not truncated
  to a first frame, so nothing is stored that no analyst is shown.
- Escape the import through an archive path (zip slip: `..`, absolute paths, drive letters, backslashes) or a
  link or special file: refused per member. `archives.iter_archive`.
- Exhaust memory, disk or time through an archive (zip bombs by count, total size, ratio, overlapping entries,
  or sizes that lie): caps checked from the directory or headers before extraction and again on the bytes that
  actually come out, one member in memory at a time.
- Smuggle content a check cannot read (encrypted members) or make two tools disagree (duplicate names, a local
  header naming another file): refused.
- Repeat the same image under many names: one item per SHA-256, the others reported as duplicates. `plan`.

Every refusal is a `Rejected(name, reason)` whose reason tells a manager what is wrong and what to do, without
revealing anything about the system (STIG V-222610). docs/import-safety.md lists each check and default limit.
"""

from appliance.datasets.intake.archives import ArchiveEntry, ArchiveLimits, Member, iter_archive
from appliance.datasets.intake.images import ImageFacts, ImageLimits, inspect_image
from appliance.datasets.intake.outcomes import Rejected, Skipped
from appliance.datasets.intake.plan import Duplicate, ImportPlan, inspect_archive, inspect_files, plan_import

__all__ = [
    "ArchiveEntry",
    "ArchiveLimits",
    "Duplicate",
    "ImageFacts",
    "ImageLimits",
    "ImportPlan",
    "Member",
    "Rejected",
    "Skipped",
    "inspect_archive",
    "inspect_files",
    "inspect_image",
    "iter_archive",
    "plan_import",
]
