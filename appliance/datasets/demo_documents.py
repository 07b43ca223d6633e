"""Synthetic captured documents with their ground-truth layout, for demonstrating import and measuring models offline.

An appliance on a closed network has no public document corpus to show or to score a layout model against, and real
paperwork cannot leave its enclave, so demo data is drawn here: report and memo pages with titles, paragraphs,
ruled tables, charts, map sketches, stamps, signatures and page furniture, some of them passed through a simulated
scanner (skew, grey scanner bed, uneven light, blur, noise, JPEG loss). Every page comes with the boxes of what was
drawn, in the final image's pixels, so quality can be measured without hand labels.

Pages are a pure function of the seed: the same seed on the same installation (Pillow, FreeType, fonts) gives the
same bytes. The text is bland logistics and maintenance prose from a built-in word list; nothing resembles real
operational content. This module must stay free of Django and of everything but Pillow and the standard library,
must never touch the disk except to read fonts, and must never download anything.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

RegionKind = Literal[
    "title", "text", "table", "figure", "caption", "stamp", "handwriting", "header", "page_number", "text_line"
]
ImageFormat = Literal["JPEG", "PNG", "TIFF", "WEBP"]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1 and y1 exclusive, as in Pillow's crop and getbbox
Point = tuple[float, float]
RGB = tuple[int, int, int]

DEFAULT_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
WHITE: RGB = (255, 255, 255)


@dataclass(frozen=True)
class Region:
    """One drawn thing. `quad` is its rectangle's corners after the scan skew, unclipped, clockwise from top-left:
    a text detector that outputs polygons is fairer scored against it than against the loose axis-aligned `box`."""

    kind: RegionKind
    box: Box
    quad: tuple[Point, Point, Point, Point]
    text: str = ""  # the printed words of a text line; empty for other regions


@dataclass(frozen=True)
class RenderedDocument:
    """A page and its truth. Text inside `stamp` and `handwriting` regions has no `lines` entry: scorers should treat
    detections there as neither right nor wrong."""

    seed: int
    image: Image.Image
    regions: list[Region]
    lines: list[Region]
    scanned: bool
    rotation: float  # degrees counter-clockwise applied by the simulated scanner; 0.0 for a clean page


def _region(kind: RegionKind, box: Box, text: str = "") -> Region:
    x0, y0, x1, y1 = box
    return Region(kind, box, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), text)


def _ibox(box: Sequence[float]) -> Box:
    return math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3])


def _union(boxes: Sequence[Box]) -> Box:
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _shift(region: Region, dx: int, dy: int) -> Region:
    x0, y0, x1, y1 = region.box
    return _region(region.kind, (x0 + dx, y0 + dy, x1 + dx, y1 + dy), region.text)


# --- Fonts -------------------------------------------------------------------------------------------------------


class FontMissingError(RuntimeError):
    """The required TrueType fonts are not installed. Pillow's bitmap default font would render pages no real
    document looks like (and no layout model was trained on), so the generator refuses rather than degrade."""


_DEJAVU = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "sans-italic": "DejaVuSans-Oblique.ttf",
    "serif": "DejaVuSerif.ttf",
    "serif-bold": "DejaVuSerif-Bold.ttf",
    "serif-italic": "DejaVuSerif-Italic.ttf",
    "condensed-bold": "DejaVuSansCondensed-Bold.ttf",
}
_LIBERATION = {  # optional (Debian fonts-liberation): the Times- and Arial-like faces most paperwork is set in
    "lib-serif": "LiberationSerif-Regular.ttf",
    "lib-serif-bold": "LiberationSerif-Bold.ttf",
    "lib-serif-italic": "LiberationSerif-Italic.ttf",
    "lib-sans": "LiberationSans-Regular.ttf",
    "lib-sans-bold": "LiberationSans-Bold.ttf",
    "lib-sans-italic": "LiberationSans-Italic.ttf",
}
_FAMILIES = (("lib-serif", 3), ("lib-sans", 2), ("serif", 1), ("sans", 2))  # face prefix, weight


@dataclass(frozen=True)
class Family:
    regular: str
    bold: str
    italic: str


@dataclass
class FontSet:
    """The faces found on disk, by name; sized fonts are built once and kept, as FreeType loading dominates small
    text runs otherwise."""

    paths: dict[str, Path]
    families: list[tuple[Family, int]]
    _cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = field(default_factory=dict)

    def font(self, face: str, size: int) -> ImageFont.FreeTypeFont:
        key = (face, max(6, size))
        if key not in self._cache:
            # BASIC layout: identical glyph placement whether or not libraqm is present, so output stays reproducible.
            self._cache[key] = ImageFont.truetype(str(self.paths[face]), key[1], layout_engine=ImageFont.Layout.BASIC)
        return self._cache[key]


def load_fonts(search_dirs: Sequence[Path] = DEFAULT_FONT_DIRS) -> FontSet:
    """The DejaVu faces (required) and Liberation faces (used when present) from `search_dirs`, never a download."""
    found: dict[str, Path] = {}
    for face, name in {**_DEJAVU, **_LIBERATION}.items():
        for directory in search_dirs:
            if (directory / name).is_file():
                found[face] = directory / name
                break
    missing = sorted(name for face, name in _DEJAVU.items() if face not in found)
    if missing:
        where = ", ".join(str(d) for d in search_dirs) or "(no directory given)"
        raise FontMissingError(
            f"DejaVu fonts {', '.join(missing)} not found in {where}: install the Debian package fonts-dejavu-core "
            "(apt-get install fonts-dejavu-core); fonts-liberation adds the Times- and Arial-like faces."
        )
    families = [
        (Family(prefix, f"{prefix}-bold", f"{prefix}-italic"), weight)
        for prefix, weight in _FAMILIES
        if all(face in found for face in (prefix, f"{prefix}-bold", f"{prefix}-italic"))
    ]
    return FontSet(paths=found, families=families)


@functools.cache
def default_fonts() -> FontSet:
    """The system fonts, loaded on first use and kept for the process."""
    return load_fonts()


# --- Words -------------------------------------------------------------------------------------------------------


def _vocabulary(text: str) -> tuple[str, ...]:
    """Comma-separated words: keeps the word lists dense enough to read as lists."""
    return tuple(text.split(","))


_ADJECTIVES = _vocabulary("forward,main,central,northern,mobile,regional,temporary,reserve,second,new,eastern,rear")
_NOUNS = _vocabulary(
    "depot,workshop,convoy,inspection team,generator,water trailer,forklift,storage area,fuel point,field kitchen,"
    "recovery vehicle,supply point,maintenance team,transport section,stores account,delivery schedule,radio "
    "workshop,tyre store,battery store,vehicle park,quartermaster,motor pool,stores clerk,repair section"
)
_VERBS = _vocabulary(
    "reported,received,completed,requested,inspected,returned,dispatched,recorded,reviewed,delivered,replaced"
)
_OBJECTS = _vocabulary(
    "replacement filters,spare tyres,pallets of rations,jerrycans,tool kits,hydraulic hoses,maintenance records,"
    "work orders,fuel samples,battery chargers,tent sections,water containers,brake assemblies,lubricant drums,"
    "camouflage nets,spare wheels,drums of engine oil,track pads,cargo straps,folding tables,first aid kits,"
    "stores returns"
)
_QUANTIFIERS = ("all", "several", "additional", "the remaining", "the outstanding", "{n}", "{n}", "over {n}")
_TRAILERS = _vocabulary(
    "during the reporting period,ahead of schedule,in line with the maintenance plan,at the main depot,before the "
    "end of the month,after the weekly inspection,without further delay,on {date},as requested by the transport "
    "section,pending confirmation from the supplier,within the agreed budget,for the next exercise,by road,"
    "from the central stores,under the new procedure"
)
_STATES = _vocabulary(
    "serviceable,under repair,below the required level,on schedule,at full capacity,awaiting spare parts,"
    "fit for tasking,subject to a follow-up check"
)
_HEADINGS = _vocabulary(
    "Summary,Background,Vehicle Maintenance,Fuel and Lubricants,Stores and Supply,Transport,Infrastructure,"
    "Personnel and Training,Inspections,Outstanding Actions,Recommendations,Financial Summary,Spare Parts,"
    "Communications Equipment,Field Kitchens,Water Supply,Storage Facilities,Safety,Coordination"
)
_TITLES = _vocabulary(
    "Quarterly Maintenance Report,Logistics Status Report,Equipment Inspection Summary,Field Kitchen Inventory "
    "Check,Monthly Fuel Consumption Return,Vehicle Fleet Readiness Review,Minutes of the Stores Coordination "
    "Meeting,Annual Stocktaking Report,Transport Movement Plan,Workshop Activity Report,Water Supply Survey"
)
_UNITS = _vocabulary(
    "2nd Supply Battalion,Logistics Support Group North,Field Workshop Company,Transport Squadron 14,"
    "Central Stores Depot,Engineer Support Unit,Regional Maintenance Centre,Medical Supply Section"
)
_NAMES = _vocabulary(
    "J. Miller,A. Novak,P. Laurent,K. Jensen,M. Rossi,S. Berg,T. Walsh,L. Moreau,R. Keller,E. Lindqvist"
)
_RANKS = _vocabulary("Maj,Capt,Lt Col,WO2,Lt,Col,SSgt")
_ROLES = _vocabulary(
    "Officer Commanding,Quartermaster,Chief Clerk,Transport Officer,Workshop Officer,Logistics Officer"
)
_MONTHS = _vocabulary("JAN,FEB,MAR,APR,MAY,JUN,JUL,AUG,SEP,OCT,NOV,DEC")
_ITEMS = _vocabulary(
    "Generator 5 kW,Water trailer,Hydraulic hose,Battery 24 V,Tyre 12.00 R20,Air filter,Fuel pump,Tent module,"
    "Field cooker,Radio handset,Camouflage net,Jerrycan 20 l,Brake pad set,Cargo strap,Tool kit,Oil filter"
)
_SUBUNITS = _vocabulary("A Coy,B Coy,C Coy,HQ Sqn,Wksp Pl,Tpt Tp,Sup Pl,Med Sect")
_TASKS = _vocabulary(
    "Annual vehicle check,Replace fuel hoses,Stocktake stores,Calibrate tools,Service generators,Repair fence,"
    "Inspect water tanks,Update records,Clean fuel point,Hand out winter kit"
)


_DATE_PATTERNS = ("{d} {M} {y}", "{d:02d} {M} {y}", "{y}-{m:02d}-{d:02d}", "{d} {Mc} {y}")


def _date(rng: random.Random, pattern: str = "") -> str:
    day, month, year = rng.randint(1, 28), rng.randrange(12), rng.randint(2021, 2025)
    pattern = pattern or rng.choice(_DATE_PATTERNS)
    return pattern.format(d=day, M=_MONTHS[month], Mc=_MONTHS[month].capitalize(), m=month + 1, y=year)


def _sentence(rng: random.Random) -> str:
    adjective = f"{rng.choice(_ADJECTIVES)} " if rng.random() < 0.5 else ""
    subject = f"the {adjective}{rng.choice(_NOUNS)}"
    form = rng.random()
    if form < 0.55:
        quantity = rng.choice(_QUANTIFIERS).format(n=rng.randint(2, 480))
        text = f"{subject} {rng.choice(_VERBS)} {quantity} {rng.choice(_OBJECTS)}"
    elif form < 0.75:
        text = f"{subject} remains {rng.choice(_STATES)}"
    elif form < 0.87:
        total = rng.randint(8, 60)
        text = f"{rng.randint(total // 2, total)} of {total} vehicles were available for tasking"
    else:
        text = f"stock of {rng.choice(_OBJECTS)} is sufficient for {rng.randint(3, 90)} days"
    if rng.random() < 0.6:
        text += " " + rng.choice(_TRAILERS).format(date=_date(rng))
    if rng.random() < 0.15:
        clause = _sentence(rng)[:-1]
        text += ", and " + clause[0].lower() + clause[1:]
    return text[0].upper() + text[1:] + "."


def _words(rng: random.Random, count: int) -> list[str]:
    words: list[str] = []
    while len(words) < count:
        words.extend(_sentence(rng).split())
    return words


# --- Tiles: each block is drawn on its own white tile and returns its regions in tile coordinates --------------


@dataclass
class Tile:
    image: Image.Image
    regions: list[Region]
    lines: list[Region]


@dataclass(frozen=True)
class Style:
    """The typographic choices of one document, so its pages look like one author's word processor."""

    fonts: FontSet
    family: Family
    body: int  # body text size in pixels
    leading: float
    justify: bool
    ink: RGB
    palette: tuple[RGB, ...]
    colour: bool  # charts and maps in colour, or in greys as from an office laser printer
    scale: float  # pixels per 150-dpi pixel
    numbered: bool
    gap: int  # space between blocks

    def font(self, which: Literal["regular", "bold", "italic"], size: int) -> ImageFont.FreeTypeFont:
        return self.fonts.font(getattr(self.family, which), size)

    def px(self, value: float) -> int:
        return max(1, round(value * self.scale))


def _new_tile(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (max(1, width), max(1, height)), WHITE)
    return image, ImageDraw.Draw(image)


def _wrap(words: Sequence[str], font: ImageFont.FreeTypeFont, width: float, indent: float = 0) -> list[list[str]]:
    space = font.getlength(" ")
    lines: list[list[str]] = []
    current: list[str] = []
    used = 0.0
    for word in words:
        length = font.getlength(word)
        limit = width - (indent if not lines else 0)
        if current and used + space + length > limit:
            lines.append(current)
            current, used = [word], length
        else:
            used = used + space + length if current else length
            current.append(word)
    return [*lines, current] if current else lines


def _draw_line(
    draw: ImageDraw.ImageDraw, xy: Point, words: Sequence[str], font: ImageFont.FreeTypeFont, fill: RGB, width: float
) -> Region:
    """One line of words; with `width` > 0 the gaps stretch so the line ends exactly there (justified)."""
    x, y = xy
    text = " ".join(words)
    if width <= 0 or len(words) < 2:
        draw.text((x, y), text, font=font, fill=fill)
        return _region("text_line", _ibox(draw.textbbox((x, y), text, font=font)), text)
    lengths = [font.getlength(w) for w in words]
    gap = (width - sum(lengths)) / (len(words) - 1)
    cursor = x
    for word, length in zip(words, lengths, strict=True):
        draw.text((round(cursor), y), word, font=font, fill=fill)
        last_x = round(cursor)
        cursor += length + gap
    _, top, _, bottom = draw.textbbox((x, y), text, font=font)
    right = draw.textbbox((last_x, y), words[-1], font=font)[2]
    left = draw.textbbox((x, y), words[0], font=font)[0]
    return _region("text_line", _ibox((left, top, right, bottom)), text)


def _text_tile(
    style: Style,
    kind: RegionKind,
    rows: Sequence[Sequence[str]],
    font: ImageFont.FreeTypeFont,
    width: int,
    **opts: float,
) -> Tile:
    """Lines of words stacked at the style's leading; the region is the union of the inked lines."""
    leading = round(font.size * opts.get("leading", style.leading))
    indent, justify, centre = opts.get("indent", 0), opts.get("justify", 0), opts.get("centre", 0)
    image, draw = _new_tile(width, leading * len(rows) + round(font.size * 0.3))
    lines = []
    for i, words in enumerate(rows):
        x = indent if i == 0 else 0
        if centre:
            x = (width - font.getlength(" ".join(words))) / 2
        stretch = width - x if justify and (i < len(rows) - 1 or justify > 1) else 0
        lines.append(_draw_line(draw, (x, i * leading), words, font, style.ink, stretch))
    return Tile(image, [_region(kind, _union([line.box for line in lines]))], lines)


def title_tile(rng: random.Random, style: Style, width: int) -> Tile:
    font = style.font("bold", round(style.body * rng.uniform(1.5, 2.0)))
    title = rng.choice(_TITLES)
    title = title.upper() if rng.random() < 0.5 else title
    rows = _wrap(title.split(), font, width * 0.9)
    return _text_tile(style, "title", rows, font, width, leading=1.25, centre=rng.random() < 0.6)


def memo_tile(rng: random.Random, style: Style, width: int) -> Tile:
    """The FROM/TO/DATE/SUBJECT block of a memorandum; narrower than the column so a stamp may sit beside it."""
    font, bold = style.font("regular", style.body), style.font("bold", style.body)
    sender, recipient = rng.sample(_UNITS, 2)
    fields = [
        ("FROM:", sender),
        ("TO:", recipient),
        ("DATE:", _date(rng)),
        ("REF:", f"{rng.choice(('LOG', 'MNT', 'TPT', 'SUP'))}/{rng.randint(100, 9999)}/{rng.randint(21, 25)}"),
        ("SUBJECT:", rng.choice(_TITLES)),
    ]
    leading = round(style.body * 1.45)
    tab = round(bold.getlength("SUBJECT:") + style.body)
    image, draw = _new_tile(width, leading * len(fields))
    lines = []
    for i, (key, value) in enumerate(fields):
        lines.append(_draw_line(draw, (0, i * leading), [key], bold, style.ink, 0))
        lines.append(_draw_line(draw, (tab, i * leading), value.split(), font, style.ink, 0))
    return Tile(image, [_region("text", _union([line.box for line in lines]))], lines)


def heading_tile(rng: random.Random, style: Style, width: int, number: int) -> Tile:
    font = style.font("bold", round(style.body * rng.uniform(1.1, 1.35)))
    text = rng.choice(_HEADINGS)
    text = f"{number}. {text}" if style.numbered else text
    return _text_tile(style, "title", _wrap(text.split(), font, width), font, width, leading=1.3)


def paragraph_tile(rng: random.Random, style: Style, width: int, max_height: int) -> Tile | None:
    """A paragraph cut to `max_height`, as a page break would cut it; None when fewer than two lines fit."""
    font = style.font("regular", style.body)
    indent = round(style.body * 1.5) if rng.random() < 0.3 else 0
    rows = _wrap(_words(rng, rng.randint(25, 110)), font, width, indent)
    fit = (max_height - round(font.size * 0.3)) // round(font.size * style.leading)
    if fit < 2:
        return None
    justify = (2 if len(rows) > fit else 1) if style.justify else 0  # a line cut by the page break is justified too
    return _text_tile(style, "text", rows[:fit], font, width, indent=indent, justify=justify)


def caption_tile(rng: random.Random, style: Style, width: int, label: str, text: str) -> Tile:
    font = style.font(rng.choice(("italic", "regular")), round(style.body * 0.9))
    rows = _wrap(f"{label}: {text}".split(), font, width)
    return _text_tile(style, "caption", rows, font, width, leading=1.3, centre=rng.random() < 0.5)


TABLE_KINDS = 4


def _table_content(rng: random.Random, kind: int, rows: int) -> tuple[str, list[str], list[list[str]]]:
    """A caption, header row and body rows of one of a few kinds of logistics table; numbers are consistent."""
    if kind == 0:
        body = []
        for item in rng.sample(_ITEMS, rows):
            held, need = rng.randint(0, 400), rng.randint(20, 400)
            part = f"{rng.randint(1000, 9999)}-{rng.randint(10, 99)}-{rng.randint(100, 999)}"
            body.append([item, part, str(held), str(need), str(max(0, need - held))])
        return "Stock held against requirement", ["Item", "Part No.", "Held", "Required", "Shortfall"], body
    if kind == 1:
        body = []
        for unit in rng.sample(_SUBUNITS, min(rows, len(_SUBUNITS))):
            total = rng.randint(6, 40)
            ok = rng.randint(total // 2, total)
            body.append([unit, str(total), str(ok), str(total - ok), f"{100 * ok / total:.1f} %"])
        return "Vehicle readiness by sub-unit", ["Unit", "Vehicles", "Serviceable", "Under repair", "Ready"], body
    if kind == 2:
        months = [_MONTHS[m] for m in sorted(rng.sample(range(12), 3))]
        body = []
        for depot in [f"Depot {c}" for c in "ABCDEFGHJK"[:rows]]:
            values = [rng.randint(800, 25000) for _ in months]
            body.append([depot, *(f"{v:,}" for v in values), f"{sum(values):,}"])
        return "Fuel dispensed in litres", ["Depot", *(m.capitalize() for m in months), "Total"], body
    pattern = rng.choice(_DATE_PATTERNS)
    body = [
        [task, _date(rng, pattern), rng.choice(("Done", "Open", "Overdue", "In progress")), rng.choice(_NAMES)]
        for task in rng.sample(_TASKS, rows)
    ]
    return "Maintenance tasks and their status", ["Task", "Due", "Status", "Lead"], body


def table_tile(rng: random.Random, style: Style, width: int, max_height: int, number: int, kind: int) -> Tile | None:
    """A ruled table with its caption above, shrunk to the rows that fit; None when three rows do not."""
    caption_text, header, body = _table_content(rng, kind, rng.randint(4, 9))
    caption = caption_tile(rng, style, width, f"Table {number}", caption_text)
    size = round(style.body * rng.uniform(0.8, 0.95))
    font, bold = style.font("regular", size), style.font("bold", size)
    pad, row_h = round(size * 0.6), round(size * rng.uniform(1.6, 2.0))
    cap_h = caption.image.height + round(size * 0.3)
    fit = (max_height - cap_h) // row_h - 1
    if fit < 3:
        return None
    body = body[:fit]
    columns = len(header)
    while True:
        widths = [
            max(bold.getlength(header[c]), *(font.getlength(r[c]) for r in body)) + 2 * pad for c in range(columns)
        ]
        if sum(widths) <= width or columns <= 2:
            break
        columns -= 1
    if sum(widths) > width:
        return None
    widths = [w * max(1.0, (width / sum(widths)) if rng.random() < 0.5 else 1.0) for w in widths]
    table_w, table_h = min(width, round(sum(widths))), row_h * (len(body) + 1)
    image, draw = _new_tile(width, cap_h + table_h + 2)
    image.paste(caption.image.crop((0, 0, width, caption.image.height)), (0, 0))
    x0, y0 = (width - table_w) // 2 if rng.random() < 0.5 else 0, cap_h
    rule, lines = rng.choice(("grid", "booktabs", "zebra")), []
    if rule != "booktabs" or rng.random() < 0.5:
        draw.rectangle((x0, y0, x0 + table_w - 1, y0 + row_h), fill=(rng.randint(205, 235),) * 3)
    for r, row in enumerate([header[:columns], *(b[:columns] for b in body)]):
        top = y0 + r * row_h
        if rule == "zebra" and r % 2 == 0 and r:
            draw.rectangle((x0, top, x0 + table_w - 1, top + row_h), fill=(242, 242, 242))
        x = x0
        for c, cell in enumerate(row):
            numeric = c > 0 and cell[:1].isdigit()
            anchor, cx = ("rm", x + widths[c] - pad) if numeric else ("lm", x + pad)
            face = bold if r == 0 else font
            draw.text((cx, top + row_h / 2), cell, font=face, fill=style.ink, anchor=anchor)
            box = _ibox(draw.textbbox((cx, top + row_h / 2), cell, font=face, anchor=anchor))
            lines.append(_region("text_line", box, cell))
            x += round(widths[c])
    bottom, right, line_w = y0 + table_h, x0 + table_w - 1, style.px(1.5)
    if rule == "booktabs":
        for y, w in ((y0, 3), (y0 + row_h, 1), (bottom, 3)):
            draw.line((x0, y, right, y), fill=style.ink, width=style.px(w))
    else:
        for r in range(len(body) + 2 if rule == "grid" else 2):
            draw.line((x0, y0 + r * row_h, right, y0 + r * row_h), fill=style.ink, width=line_w)
        draw.rectangle((x0, y0, right, bottom), outline=style.ink, width=line_w)
        x = x0
        for col_w in widths[: columns - 1] if rule == "grid" else []:
            x += round(col_w)
            draw.line((x, y0, x, bottom), fill=style.ink, width=line_w)
    table = _region("table", (x0, y0 - style.px(2), right + 1, bottom + style.px(3)))  # thick rules straddle
    return Tile(image, [*caption.regions, table], [*caption.lines, *lines])


def _nice_max(value: float) -> float:
    magnitude = 10 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= value)


def _label(draw: ImageDraw.ImageDraw, xy: Point, text: str, font: ImageFont.FreeTypeFont, anchor: str) -> Region:
    draw.text(xy, text, font=font, fill=(30, 30, 30), anchor=anchor)
    return _region("text_line", _ibox(draw.textbbox(xy, text, font=font, anchor=anchor)), text)


def _chart(rng: random.Random, style: Style, draw: ImageDraw.ImageDraw, box: Box, kind: str) -> list[Region]:
    """Bars or lines on ruled axes with tick labels, a title and, for two series, a legend."""
    x0, y0, x1, y1 = box
    font = style.font("regular", round(style.body * 0.75))
    if kind == "bar":
        cats = [m.capitalize() for m in _MONTHS[: rng.randint(4, 8)]] if rng.random() < 0.6 else list("ABCDEF")
    else:
        cats = [f"W{i}" for i in range(1, rng.randint(6, 13))]
    series = [
        [rng.uniform(5, 100) for _ in cats] for _ in range(rng.choice((1, 1, 2, 3) if kind == "line" else (1, 2)))
    ]
    top = _nice_max(max(max(s) for s in series))
    title = rng.choice(("Fuel dispensed (1000 l)", "Work orders closed", "Vehicles available", "Stock level (%)"))
    lines = [_label(draw, (x0, y0), title, style.font("bold", round(style.body * 0.8)), "la")]
    ticks = [top * i / 5 for i in range(6)]
    label_w = max(font.getlength(f"{t:g}") for t in ticks)
    px0, py0, px1, py1 = x0 + label_w + style.px(10), y0 + round(font.size * 2.2), x1 - style.px(6), y1 - font.size * 2
    for t in ticks:
        y = py1 - (py1 - py0) * t / top
        draw.line((px0, y, px1, y), fill=(215, 215, 215) if t else style.ink, width=1 if t else style.px(1.5))
        lines.append(_label(draw, (px0 - style.px(6), y), f"{t:g}", font, "rm"))
    draw.line((px0, py0, px0, py1), fill=style.ink, width=style.px(1.5))
    step = (px1 - px0) / len(cats)
    for i, cat in enumerate(cats):
        lines.append(_label(draw, (px0 + step * (i + 0.5), py1 + style.px(6)), cat, font, "ma"))
    for k, values in enumerate(series):
        colour = style.palette[k % len(style.palette)]
        points = [(px0 + step * (i + 0.5), py1 - (py1 - py0) * v / top) for i, v in enumerate(values)]
        if kind == "bar":
            bar_w = step * 0.7 / len(series)
            for (x, y), _ in zip(points, values, strict=True):
                left = x - step * 0.35 + k * bar_w
                draw.rectangle((left, y, left + bar_w - 1, py1), fill=colour, outline=style.ink)
        else:
            draw.line(points, fill=colour, width=style.px(2.5), joint="curve")
            for x, y in points:
                r = style.px(3.5)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    if len(series) > 1:
        names = rng.choice((("2023", "2024", "2025"), ("North", "South", "East"), ("Planned", "Actual", "Forecast")))
        lx = x1 - sum(font.getlength(n) + font.size * 2.2 for n in names[: len(series)])
        for k, name in enumerate(names[: len(series)]):
            draw.rectangle((lx, y0 + 2, lx + font.size * 0.8, y0 + 2 + font.size * 0.8), fill=style.palette[k])
            lines.append(_label(draw, (lx + font.size, y0), name, font, "la"))
            lx += font.getlength(name) + font.size * 2.2
    return lines


def _catmull_rom(a: float, b: float, c: float, d: float, t: float) -> float:
    return 0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t * t + (3 * b - a - 3 * c + d) * t * t * t)


def _smooth(points: Sequence[Point], steps: int = 8) -> list[Point]:
    """A Catmull-Rom curve through `points`: the cheap way to a pen-like or river-like line."""
    pts = [points[0], *points, points[-1]]
    out: list[Point] = []
    for (ax, ay), (bx, by), (cx, cy), (dx, dy) in zip(pts, pts[1:], pts[2:], pts[3:], strict=False):
        for step in range(steps):
            t = step / steps
            out.append((_catmull_rom(ax, bx, cx, dx, t), _catmull_rom(ay, by, cy, dy, t)))
    return [*out, points[-1]]


def _map_sketch(rng: random.Random, style: Style, draw: ImageDraw.ImageDraw, box: Box) -> list[Region]:
    """A sketch map: lettered grid, woods, a river, roads, marked sites, north arrow and scale bar."""
    font = style.font("regular", round(style.body * 0.7))
    x0, y0, x1, y1 = box[0] + font.size * 2, box[1] + font.size * 2, box[2] - 1, box[3] - 1
    w, h = x1 - x0, y1 - y0
    draw.rectangle((x0, y0, x1, y1), fill=(246, 243, 234) if style.colour else WHITE)

    def anywhere(margin: float = 0.05) -> Point:
        return x0 + w * rng.uniform(margin, 1 - margin), y0 + h * rng.uniform(margin, 1 - margin)

    for _ in range(rng.randint(1, 3)):
        cx, cy = anywhere(0.15)
        blob = [
            (cx + math.cos(a) * w * rng.uniform(0.06, 0.14), cy + math.sin(a) * h * rng.uniform(0.06, 0.16))
            for a in (i * math.tau / 9 for i in range(9))
        ]
        draw.polygon(_smooth([*blob, blob[0]], 4), fill=(206, 224, 198), outline=(120, 150, 110))
    river = _smooth(
        [(x0, y0 + h * rng.uniform(0.1, 0.9)), anywhere(), anywhere(), (x1, y0 + h * rng.uniform(0.1, 0.9))]
    )
    draw.line(river, fill=(120, 160, 205), width=style.px(6), joint="curve")
    for _ in range(rng.randint(2, 3)):
        road = _smooth([(x0 + w * rng.random(), y0), anywhere(), (x0 + w * rng.random(), y1)])
        draw.line(road, fill=(70, 60, 55), width=style.px(4), joint="curve")
        draw.line(road, fill=(235, 215, 160), width=style.px(2), joint="curve")
    grid = rng.choice((5, 6, 8))
    lines = []
    for i in range(grid + 1):
        gx, gy = x0 + w * i / grid, y0 + h * i / grid
        draw.line((gx, y0, gx, y1), fill=(150, 150, 150), width=1)
        draw.line((x0, gy, x1, gy), fill=(150, 150, 150), width=1)
        if i < grid:
            lines.append(_label(draw, (gx + w / grid / 2, y0 - font.size * 0.4), "ABCDEFGH"[i], font, "md"))
            lines.append(_label(draw, (x0 - font.size * 0.5, gy + h / grid / 2), str(i + 1), font, "rm"))
    sites = ("DEPOT 2", "WORKSHOP", "FUEL POINT", "HQ", "CP 4", "WATER POINT", "STORES", "HELIPAD")
    for name, cell in zip(rng.sample(sites, 4), rng.sample(range(8), 4), strict=True):  # one per cell: no overlaps
        sx = x0 + w * (0.08 + 0.35 * (cell % 2) + rng.uniform(0, 0.2))
        sy = y0 + h * (0.12 + 0.21 * (cell // 2) + rng.uniform(0, 0.1))
        r = style.px(7)
        draw.rectangle((sx - r, sy - r, sx + r, sy + r), fill=(190, 40, 40), outline=(40, 40, 40))
        lines.append(_label(draw, (sx + r * 1.6, sy), name, font, "lm"))
    ax, ay, r = x1 - style.px(28), y0 + style.px(22), style.px(10)
    draw.polygon([(ax, ay - r * 1.4), (ax - r, ay + r), (ax, ay + r * 0.4), (ax + r, ay + r)], fill=(30, 30, 30))
    lines.append(_label(draw, (ax, ay + r * 1.3), "N", font, "ma"))
    bar_x, bar_y, seg = x0 + style.px(14), y1 - style.px(20), style.px(30)
    for i in range(3):
        draw.rectangle(
            (bar_x + i * seg, bar_y, bar_x + (i + 1) * seg, bar_y + style.px(6)),
            fill=(30, 30, 30) if i % 2 == 0 else WHITE,
            outline=(30, 30, 30),
        )
    lines.append(_label(draw, (bar_x + 3 * seg + style.px(6), bar_y + style.px(3)), "3 km", font, "lm"))
    draw.rectangle((x0, y0, x1, y1), outline=(40, 40, 40), width=style.px(2))
    return lines


def figure_tile(rng: random.Random, style: Style, width: int, max_height: int, number: int) -> Tile | None:
    """A chart or sketch map with its caption below; None when no useful size fits."""
    kind = rng.choice(("bar", "line", "map"))
    fig_w = round(width * rng.uniform(0.6, 0.95))
    caption_text = {"bar": "Monthly totals by depot", "line": "Weekly trend", "map": "Sketch of the depot area"}[kind]
    caption = caption_tile(rng, style, width, f"Figure {number}", caption_text)
    fig_h = min(
        round(fig_w * rng.uniform(0.5, 0.65) * (1.3 if kind == "map" else 1)), max_height - caption.image.height
    )
    fig_h -= round(style.body * 0.8)
    if fig_h < style.px(220):
        return None
    x = (width - fig_w) // 2
    image, draw = _new_tile(width, fig_h + round(style.body * 0.8) + caption.image.height)
    area = (x, 0, x + fig_w, fig_h)
    lines = _map_sketch(rng, style, draw, area) if kind == "map" else _chart(rng, style, draw, area, kind)
    ink = _union([ImageChops.invert(image.convert("L")).getbbox() or area, *(line.box for line in lines)])
    cap_y = fig_h + round(style.body * 0.8)
    image.paste(caption.image, (0, cap_y))
    captions = [_shift(r, 0, cap_y) for r in (*caption.regions, *caption.lines)]
    return Tile(image, [_region("figure", ink), captions[0]], [*lines, *captions[1:]])


# --- Handwriting and stamps: drawn as ink masks, laid over free paper -------------------------------------------


def _cursive(rng: random.Random, x: float, baseline: float, x_height: float, heights: Sequence[float]) -> list[Point]:
    """A trochoid pen path, one turn per letter: a wide turn loops like an e or l, a narrow one arches like an n;
    letters of height above 1 rise as ascenders, negative ones drop as descenders."""
    slant, drift, phase = rng.uniform(0.1, 0.35), rng.uniform(0, 0.12) * x_height, rng.uniform(0, math.tau)
    points: list[Point] = []
    for height in heights:
        advance = x_height * rng.uniform(0.6, 0.95)
        turn = x_height * (rng.uniform(0.22, 0.42) if rng.random() < 0.6 else rng.uniform(0, 0.08))
        for s in range(16):
            t = s * math.tau / 16
            y = -height * x_height * (1 - math.cos(t)) / 2 + drift * math.sin(x / x_height + phase)
            points.append((x + advance * s / 16 + turn * math.sin(t) - y * slant, baseline + y))
        x += advance
    return [*points, (x, baseline)]


def _letters(rng: random.Random, count: int) -> list[float]:
    return [rng.choice((1, 1, 1, 1, 0.8, 2.3, 2.6, -1.6)) * rng.uniform(0.85, 1.15) for _ in range(count)]


def _ink_mask(strokes: Sequence[Sequence[Point]], pen: float) -> Image.Image:
    """Strokes drawn at twice the size and halved, for antialiased pen lines."""
    xs = [p[0] for s in strokes for p in s]
    ys = [p[1] for s in strokes for p in s]
    pad = math.ceil(pen) + 2
    left, top = math.floor(min(xs)) - pad, math.floor(min(ys)) - pad
    size = (math.ceil(max(xs)) - left + pad, math.ceil(max(ys)) - top + pad)
    big = Image.new("L", (size[0] * 2, size[1] * 2), 0)
    draw = ImageDraw.Draw(big)
    for stroke in strokes:
        draw.line(
            [((px - left) * 2, (py - top) * 2) for px, py in stroke], fill=255, width=round(pen * 2), joint="curve"
        )
    return big.resize(size, Image.Resampling.BOX)


def handwriting_mask(rng: random.Random, scale: float, signature: bool) -> Image.Image:
    """A signature (one or two loopy words and a flourish) or a short margin note of a few scribbled words."""
    strokes: list[list[Point]] = []
    if signature:
        x, size = 0.0, rng.uniform(14, 22) * scale
        for _ in range(rng.randint(1, 2)):
            word = _cursive(rng, x, 0, size, [rng.uniform(2.6, 3.4), *_letters(rng, rng.randint(3, 7))])
            strokes.append(word)
            x = word[-1][0] + size * rng.uniform(0.8, 1.5)
        end = strokes[-1][-1]
        strokes[-1] += _smooth([end, (end[0] + size, size * 0.6), (x * 0.5, size * 1.4), (-size, size * 0.9)], 10)
        pen = rng.uniform(1.6, 2.6) * scale
    else:
        size, pen = rng.uniform(11, 16) * scale, rng.uniform(1.2, 1.8) * scale
        for row in range(rng.randint(1, 3)):
            x = rng.uniform(0, size * 2)
            for _ in range(rng.randint(1, 3)):
                word = _cursive(rng, x, row * size * 3.2, size, _letters(rng, rng.randint(2, 7)))
                strokes.append(word)
                x = word[-1][0] + size * rng.uniform(1.0, 1.8)
    return _ink_mask(strokes, pen)


def _box_stamp(fonts: FontSet, scale: float, rows: Sequence[str], double: bool) -> Image.Image:
    """Lines of capitals in a (double) frame, the first line large."""
    faces = [fonts.font("condensed-bold", round((30 if i == 0 else 19) * scale)) for i in range(len(rows))]
    width = round(max(f.getlength(t) for t, f in zip(rows, faces, strict=True)) + 36 * scale)
    height = round(sum(f.size * 1.35 for f in faces) + 24 * scale)
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    draw.rectangle((0, 0, width - 1, height - 1), outline=255, width=round(4 * scale))
    if double:
        inset = round(8 * scale)
        draw.rectangle((inset, inset, width - 1 - inset, height - 1 - inset), outline=255, width=round(1.5 * scale))
    y = 12 * scale
    for text, font in zip(rows, faces, strict=True):
        draw.text((width / 2, y + font.size * 0.675), text, font=font, fill=255, anchor="mm")
        y += font.size * 1.35
    return mask


def _round_stamp(fonts: FontSet, radius: int, ring: str, word: str, date: str) -> Image.Image:
    """Two rings with `ring` lettered clockwise between them, feet inward, and the word and date in the middle."""
    c = radius + 2
    mask = Image.new("L", (2 * c, 2 * c), 0)
    draw = ImageDraw.Draw(mask)
    draw.ellipse((2, 2, 2 * c - 2, 2 * c - 2), outline=255, width=max(2, radius // 24))
    inner = radius * 0.7
    draw.ellipse((c - inner, c - inner, c + inner, c + inner), outline=255, width=max(1, radius // 48))
    ring_font = fonts.font("condensed-bold", round(radius * 0.2))
    half = round(ring_font.size)
    for i, letter in enumerate(ring):
        angle = math.pi / 2 - math.tau * i / len(ring)
        glyph = Image.new("L", (half * 2, half * 2), 0)
        ImageDraw.Draw(glyph).text((half, half), letter, font=ring_font, fill=255, anchor="mm")
        glyph = glyph.rotate(math.degrees(angle) - 90, resample=Image.Resampling.BICUBIC)
        gx, gy = c + math.cos(angle) * radius * 0.85, c - math.sin(angle) * radius * 0.85
        mask.paste(255, (round(gx) - half, round(gy) - half), glyph)
    size = round(inner * 0.38)
    while fonts.font("condensed-bold", size).getlength(word) > inner * 1.8:
        size -= 2
    draw.text((c, c - size * 0.35), word, font=fonts.font("condensed-bold", size), fill=255, anchor="mm")
    draw.text((c, c + size * 0.7), date, font=fonts.font("condensed-bold", round(size * 0.7)), fill=255, anchor="mm")
    return mask


def stamp_mask(rng: random.Random, fonts: FontSet, scale: float) -> Image.Image:
    """A rubber stamp, rectangular or round, rotated and unevenly inked, as an opacity mask."""
    word = rng.choice(("RECEIVED", "ENTERED", "CHECKED", "APPROVED", "REGISTERED", "COPY"))
    day, month = rng.randint(1, 28), rng.choice(_MONTHS)
    date = f"{day} {month}" if rng.random() < 0.5 else f"{day} {month} {rng.randint(2021, 2025)}"
    if rng.random() < 0.55:
        office = rng.choice(("REGISTRY", "LOG SECTION", f"No. {rng.randint(10, 9999):04d}"))
        mask = _box_stamp(fonts, scale, (word, date, office), double=rng.random() < 0.5)
    else:
        radius = round(rng.uniform(85, 105) * scale)
        mask = _round_stamp(fonts, radius, f"{rng.choice(_UNITS).upper()} * ", word, date)
    mask = mask.rotate(rng.uniform(-18, 18), resample=Image.Resampling.BICUBIC, expand=True)
    # Rubber never inks evenly: a coarse random field, enlarged smoothly, fades patches of the impression.
    cells = (max(1, mask.width // 6), max(1, mask.height // 6))
    grain = Image.frombytes("L", cells, rng.randbytes(cells[0] * cells[1]))
    grain = grain.resize(mask.size, Image.Resampling.BICUBIC).point(lambda v: 120 + v // 2)
    return ImageChops.multiply(mask, grain)


def signature_tile(rng: random.Random, style: Style, width: int) -> Tile:
    """A signature over the printed name and appointment, as at the foot of a memo."""
    mask = handwriting_mask(rng, style.scale, signature=True)
    font = style.font("regular", style.body)
    name = f"{rng.choice(_NAMES)}, {rng.choice(_RANKS)}"
    text = _text_tile(style, "text", [name.split(), rng.choice(_ROLES).split()], font, width, leading=1.35)
    x = 0 if rng.random() < 0.5 else max(0, width - max(mask.width, text.regions[0].box[2]) - style.px(20))
    image, _ = _new_tile(width, mask.height + text.image.height)
    image.paste(rng.choice(((25, 35, 120), (30, 30, 40))), (x, 0, x + mask.width, mask.height), mask)
    image.paste(text.image.crop((0, 0, width - x, text.image.height)), (x, mask.height))
    ink = mask.getbbox() or (0, 0, mask.width, mask.height)
    scribble = _region("handwriting", (ink[0] + x, ink[1], ink[2] + x, ink[3]))
    shifted = [_shift(r, x, mask.height) for r in (*text.regions, *text.lines)]
    return Tile(image, [scribble, shifted[0]], shifted[1:])


def furniture_tile(rng: random.Random, style: Style, width: int, page: int, pages: int, top: bool) -> Tile:
    """The running header (unit, reference, marking) or the page number: small type the layout models call
    header and footer, kept as their own regions so a text detector is still scored on them."""
    font = style.font("regular", round(style.body * 0.8))
    image, draw = _new_tile(width, round(font.size * 1.6))
    if top:
        choice = rng.random()
        if choice < 0.3:
            parts = [("UNCLASSIFIED", "ma")]
        else:
            right = (
                f"Ref. {rng.choice(('LOG', 'MNT', 'TPT'))}/{rng.randint(100, 9999)}" if choice < 0.65 else _date(rng)
            )
            parts = [(rng.choice(_UNITS), "la"), (right, "ra")]
    else:
        text = rng.choice((f"Page {page} of {pages}", f"- {page} -", str(page), f"{page}/{pages}"))
        parts = [(text, rng.choice(("ma", "ra")))]
    regions, lines = [], []
    for text, anchor in parts:
        x = {"l": 0, "m": width / 2, "r": width - 1}[anchor[0]]
        line = _label(draw, (x, 0), text, font, anchor)
        lines.append(line)
        regions.append(_region("header" if top else "page_number", line.box))
    if top and rng.random() < 0.5:
        draw.line((0, image.height - 2, width, image.height - 2), fill=style.ink, width=style.px(1))
    return Tile(image, regions, lines)


# --- Page layout -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageSpec:
    name: str
    size: tuple[int, int]
    dpi: int


PAGE_SPECS: tuple[tuple[PageSpec, int], ...] = (
    (PageSpec("A4", (1240, 1754), 150), 55),
    (PageSpec("US Letter", (1275, 1650), 150), 15),
    (PageSpec("A4 landscape", (1754, 1240), 150), 10),
    (PageSpec("A5", (874, 1240), 150), 10),
    (PageSpec("A4 at 120 dpi", (992, 1403), 120), 10),
)


def _style(rng: random.Random, fonts: FontSet, spec: PageSpec) -> Style:
    family = rng.choices([f for f, _ in fonts.families], [w for _, w in fonts.families])[0]
    body, colour = round(rng.uniform(10, 12) * spec.dpi / 72), rng.random() < 0.6  # body text of 10 to 12 point
    palette = (
        ((60, 100, 160), (215, 125, 45), (85, 145, 85)) if colour else ((80, 80, 80), (165, 165, 165), (40, 40, 40))
    )
    return Style(
        fonts=fonts,
        family=family,
        body=body,
        leading=rng.uniform(1.25, 1.45),
        justify=rng.random() < 0.5,
        ink=(rng.randint(5, 35),) * 3,
        palette=palette,
        colour=colour,
        scale=spec.dpi / 150,
        numbered=rng.random() < 0.7,
        gap=round(body * rng.uniform(0.7, 1.1)),
    )


class _Flow:
    """The column cursor: blocks stack down a column and move to the next one when the column is full."""

    def __init__(self, box: Box, columns: int, gutter: int) -> None:
        self.x0, self.y, self.x1, self.y1 = box
        self.columns, self.gutter, self.column = columns, gutter, 0
        self.top = self.y
        self.width = (self.x1 - self.x0 - gutter * (columns - 1)) // columns

    @property
    def left(self) -> int:
        return self.x0 + self.column * (self.width + self.gutter)

    @property
    def room(self) -> int:
        return self.y1 - self.y

    def next_column(self) -> bool:
        if self.column + 1 >= self.columns:
            return False
        self.column, self.y = self.column + 1, self.top
        return True


def _overlaps(a: Box, b: Box, pad: int) -> bool:
    return a[0] < b[2] + pad and b[0] < a[2] + pad and a[1] < b[3] + pad and b[1] < a[3] + pad


def _free_spot(rng: random.Random, size: tuple[int, int], page: tuple[int, int], taken: Sequence[Box]) -> Box | None:
    """Somewhere on the paper clear of every region: overlays never hide the truth they would be scored against."""
    edge = round(page[0] * 0.03)
    if size[0] > page[0] - 2 * edge or size[1] > page[1] - 2 * edge:
        return None
    for _ in range(80):
        x, y = rng.randint(edge, page[0] - edge - size[0]), rng.randint(edge, page[1] - edge - size[1])
        box = (x, y, x + size[0], y + size[1])
        if not any(_overlaps(box, t, 12) for t in taken):
            return box
    return None


@dataclass
class _Page:
    """The sheet being composed and the truth drawn on it so far."""

    image: Image.Image
    regions: list[Region] = field(default_factory=list)
    lines: list[Region] = field(default_factory=list)

    def put(self, tile: Tile, x: int, y: int) -> None:
        self.image.paste(tile.image, (x, y))
        self.regions.extend(_shift(r, x, y) for r in tile.regions)
        self.lines.extend(_shift(r, x, y) for r in tile.lines)


def _front_matter(
    rng: random.Random, style: Style, page: _Page, margins: tuple[int, int]
) -> tuple[int, int, bool, bool]:
    """Running header, page number and, on a first page, the title and perhaps a memo block. Returns the top and
    bottom left for the body, whether this is a first page, and whether it is a memo (memos are usually signed)."""
    (w, h), (mx, my) = page.image.size, margins
    top, bottom, gap = my, h - my, style.gap
    pages = rng.randint(1, 8)
    number = 1 if rng.random() < 0.4 else rng.randint(1, pages)
    if rng.random() < 0.75:
        header = furniture_tile(rng, style, w - 2 * mx, number, pages, top=True)
        page.put(header, mx, top)
        top += header.image.height + 2 * gap
    if rng.random() < 0.85:
        footer = furniture_tile(rng, style, w - 2 * mx, number, pages, top=False)
        page.put(footer, mx, bottom - footer.image.height)
        bottom -= footer.image.height + 2 * gap
    if number != 1:
        return top, bottom, False, False
    title = title_tile(rng, style, w - 2 * mx)
    page.put(title, mx, top)
    top += title.image.height + 2 * gap
    if rng.random() < 0.5:
        block = memo_tile(rng, style, round((w - 2 * mx) * 0.62))
        page.put(block, mx, top)
        return top + block.image.height + 2 * gap, bottom, True, True
    return top, bottom, True, False


def _block(
    rng: random.Random, style: Style, kind: str, flow: _Flow, numbers: dict[str, int], table_kinds: Sequence[int]
) -> Tile | None:
    """The next block of `kind` that fits the column's remaining room, or None."""
    if kind == "paragraph":
        return paragraph_tile(rng, style, flow.width, flow.room)
    if kind == "table":
        table_kind = table_kinds[numbers["table"] % TABLE_KINDS]
        return table_tile(rng, style, flow.width, flow.room, numbers["table"], table_kind)
    if kind == "figure":
        return figure_tile(rng, style, flow.width, flow.room, numbers["figure"])
    tile = heading_tile(rng, style, flow.width, numbers["heading"])
    return tile if tile.image.height + style.body * style.leading * 3 < flow.room else None  # no orphan headings


def _flow_blocks(rng: random.Random, style: Style, page: _Page, flow: _Flow, first_page: bool) -> None:
    """Headings, paragraphs, tables and figures down the columns; some pages stop early, as a last page does."""
    stop = flow.y1 if rng.random() < 0.55 else round(flow.top + (flow.y1 - flow.top) * rng.uniform(0.35, 0.8))
    numbers = {"heading": 1 if first_page else rng.randint(2, 6), "table": rng.randint(1, 4)}
    numbers["figure"] = rng.randint(1, 4)
    table_kinds = rng.sample(range(TABLE_KINDS), TABLE_KINDS)  # consecutive tables are never of the same kind
    placed, last = {"table": 0, "figure": 0}, "heading" if first_page else ""
    for _ in range(60):
        if last == "heading":
            kind = rng.choices(("paragraph", "table", "figure"), (8, 1, 1))[0]
        else:
            weights = (2, 5, 1.3 if placed["table"] < 2 else 0, 1.3 if placed["figure"] < 2 else 0)
            kind = rng.choices(("heading", "paragraph", "table", "figure"), weights)[0]
        tile = _block(rng, style, kind, flow, numbers, table_kinds)
        if tile is None and kind != "paragraph":  # text fills what a table or figure cannot
            kind, tile = "paragraph", _block(rng, style, "paragraph", flow, numbers, table_kinds)
        if tile is None:
            if flow.next_column():
                continue
            return
        page.put(tile, flow.left, flow.y)
        flow.y += tile.image.height + (style.gap // 2 if kind == "heading" else style.gap)
        numbers[kind] = numbers.get(kind, 0) + 1
        placed[kind] = placed.get(kind, 0) + 1
        last = kind
        if flow.column == flow.columns - 1 and flow.y > stop and kind != "heading":
            return


def _marks(rng: random.Random, style: Style, page: _Page) -> None:
    """Stamps and margin notes, each on paper clear of every region so they never hide what is scored."""
    for kind in rng.choices(("stamp", "note", ""), (5, 3, 4), k=rng.randint(1, 3)):
        if not kind:
            continue
        if kind == "stamp":
            mask = stamp_mask(rng, style.fonts, style.scale)
            colour = rng.choice(((190, 30, 45), (35, 60, 165), (120, 45, 140)))
        else:
            mask = handwriting_mask(rng, style.scale, signature=False)
            colour = rng.choice(((25, 40, 140), (30, 30, 40), (110, 110, 115)))
        spot = _free_spot(rng, mask.size, page.image.size, [r.box for r in page.regions])
        ink = mask.getbbox()
        if spot is None or ink is None:
            continue
        page.image.paste(colour, spot, mask)
        page.regions.append(_region("stamp" if kind == "stamp" else "handwriting", _shift_box(ink, spot)))


def _compose(rng: random.Random, fonts: FontSet, spec: PageSpec) -> _Page:
    """Front matter, flowing blocks in one or two columns, perhaps a signature, then stamps and notes."""
    style = _style(rng, fonts, spec)
    (w, h), page = spec.size, _Page(Image.new("RGB", spec.size, WHITE))
    mx = round(w * rng.uniform(0.07, 0.11))
    top, bottom, first_page, memo = _front_matter(rng, style, page, (mx, round(h * rng.uniform(0.04, 0.06))))
    columns = 2 if w > 1100 and rng.random() < (0.6 if w > h else 0.25) else 1
    flow = _Flow((mx, top, w - mx, bottom), columns, round(style.body * 1.8))
    _flow_blocks(rng, style, page, flow, first_page)
    if rng.random() < (0.8 if memo else 0.35):
        signature = signature_tile(rng, style, flow.width)
        if signature.image.height + style.gap < flow.room:
            page.put(signature, flow.left, flow.y + style.gap)
    _marks(rng, style, page)
    return page


def _shift_box(box: Sequence[int], origin: Sequence[int]) -> Box:
    return box[0] + origin[0], box[1] + origin[1], box[2] + origin[0], box[3] + origin[1]


# --- The simulated scanner ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Skew:
    """Where the scanner put the paper: a rotation about the page centre, then a shift, as Pillow's rotate does."""

    angle: float
    centre: Point
    shift: tuple[int, int]

    def apply(self, point: Point) -> Point:
        a = math.radians(self.angle)
        dx, dy = point[0] - self.centre[0], point[1] - self.centre[1]
        return (
            self.centre[0] + self.shift[0] + dx * math.cos(a) + dy * math.sin(a),
            self.centre[1] + self.shift[1] - dx * math.sin(a) + dy * math.cos(a),
        )


def _scan(rng: random.Random, page: Image.Image) -> tuple[Image.Image, _Skew]:
    """Paper tint and uneven light, skew on a grey bed, then some of blur, sensor noise, dust and JPEG loss."""
    w, h = page.size
    red = rng.randint(240, 253)
    tint = (red, red - rng.randint(0, 4), red - rng.randint(3, 14))  # white to warm recycled paper
    light = Image.new("RGB", (3, 4))
    for i in range(12):
        v = rng.uniform(0.84, 1.0)
        light.putpixel((i % 3, i // 3), tuple(round(c * v) for c in tint))
    page = ImageChops.multiply(page, light.resize(page.size, Image.Resampling.BICUBIC))
    if rng.random() < 0.3:
        page = page.convert("L").convert("RGB")
    skew = _Skew(
        rng.choice((-1, 1)) * rng.uniform(0.3, 3.0),
        (w / 2, h / 2),
        (round(rng.uniform(-0.015, 0.015) * w), round(rng.uniform(-0.012, 0.012) * h)),
    )
    bed = (rng.randint(70, 160),) * 3
    page = page.rotate(skew.angle, Image.Resampling.BILINEAR, center=skew.centre, translate=skew.shift, fillcolor=bed)
    if rng.random() < 0.5:
        factor = rng.uniform(0.55, 0.8)
        small = page.resize((round(w * factor), round(h * factor)), Image.Resampling.BILINEAR)
        page = small.resize((w, h), Image.Resampling.BILINEAR)
    elif rng.random() < 0.3:
        page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 0.9)))
    amplitude = rng.uniform(3, 10) / 52  # the mean of two uniform bytes has a deviation of about 52 levels
    noise = Image.blend(
        Image.frombytes("L", (w, h), rng.randbytes(w * h)), Image.frombytes("L", (w, h), rng.randbytes(w * h)), 0.5
    ).point(lambda v: round(128 + (v - 128) * amplitude))
    page = ImageChops.add(page, noise.convert("RGB"), 1.0, -128)
    draw = ImageDraw.Draw(page)
    for _ in range(rng.randint(0, 10)):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.6, 1.8)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randint(70, 150),) * 3)
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        page.save(buffer, "JPEG", quality=rng.randint(25, 60))
        page = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return page, skew


def _skewed(region: Region, skew: _Skew, size: tuple[int, int]) -> Region | None:
    """The region's corners moved with the paper; its box is their axis-aligned hull, clipped to the image."""
    quad = (
        skew.apply(region.quad[0]),
        skew.apply(region.quad[1]),
        skew.apply(region.quad[2]),
        skew.apply(region.quad[3]),
    )
    x0, y0, x1, y1 = _ibox(
        (min(p[0] for p in quad), min(p[1] for p in quad), max(p[0] for p in quad), max(p[1] for p in quad))
    )
    box = (max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1))
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return Region(region.kind, box, quad, region.text)


# --- Public entry points -----------------------------------------------------------------------------------------


def render_document(seed: int, *, scan_effects: bool | None = None, fonts: FontSet | None = None) -> RenderedDocument:
    """The page for `seed`. `scan_effects` forces the scanner on or off without changing what is printed, so a
    clean page and its scan can be compared; None lets the seed decide (a little over half are scanned)."""
    rng = random.Random(f"demo-document:{seed}")  # noqa: S311 - reproducible layout, not secrecy
    scan_by_seed = rng.random() < 0.55
    spec = rng.choices([s for s, _ in PAGE_SPECS], [weight for _, weight in PAGE_SPECS])[0]
    page = _compose(rng, fonts or default_fonts(), spec)
    if not (scan_by_seed if scan_effects is None else scan_effects):
        return RenderedDocument(seed, page.image, page.regions, page.lines, scanned=False, rotation=0.0)
    image, skew = _scan(random.Random(f"demo-scan:{seed}"), page.image)  # noqa: S311 - as above
    moved = [_skewed(r, skew, image.size) for r in page.regions]
    moved_lines = [_skewed(r, skew, image.size) for r in page.lines]
    kept, kept_lines = [r for r in moved if r], [r for r in moved_lines if r]
    return RenderedDocument(seed, image, kept, kept_lines, scanned=True, rotation=skew.angle)


_SAVE_OPTIONS: dict[str, dict[str, int | str]] = {
    "JPEG": {"quality": 90},
    "PNG": {"compress_level": 6},
    "TIFF": {"compression": "tiff_lzw"},
    "WEBP": {"quality": 85, "method": 4},
}
EXTENSIONS: dict[ImageFormat, str] = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "WEBP": "webp"}


def encode(doc: RenderedDocument, fmt: ImageFormat = "JPEG") -> bytes:
    """The page as file bytes, in memory: demo data must never land on the appliance's disks unencrypted."""
    if fmt not in _SAVE_OPTIONS:
        raise ValueError(f"unsupported format {fmt!r}; expected one of {', '.join(_SAVE_OPTIONS)}")
    buffer = io.BytesIO()
    doc.image.save(buffer, fmt, **_SAVE_OPTIONS[fmt])
    return buffer.getvalue()


def _child_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=6).digest(), "big")


def demo_set(count: int, seed: int = 0) -> Iterator[tuple[str, bytes, RenderedDocument]]:
    """`count` named files as a scanner export would hold them: mostly JPEG, every fifth a PNG."""
    for index in range(count):
        fmt: ImageFormat = "PNG" if index % 5 == 4 else "JPEG"
        doc = render_document(_child_seed(seed, index))
        yield f"doc-{index + 1:04d}.{EXTENSIONS[fmt]}", encode(doc, fmt), doc
