"""An organisation's or a widget's look: colours checked for contrast (WCAG 2.1 AA), fonts from
the visitor's own machine, a logo served by the hub itself. Nothing is loaded from elsewhere."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
AA_TEXT = 4.5  # WCAG 2.1 1.4.3: normal text
WHITE, INK = "#ffffff", "#1d1d1f"

# Font stacks installed on visitors' machines: a hospital picks a family, never a web font URL.
FONTS = {
    "system": 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
    "humanist": '"Gill Sans", "Gill Sans MT", Seravek, "Trebuchet MS", Calibri, sans-serif',
    "serif": 'Charter, "Bitstream Charter", "Sitka Text", Cambria, Georgia, serif',
    "rounded": '"SF Pro Rounded", Quicksand, Comfortaa, "Arial Rounded MT Bold", sans-serif',
    "monospace": 'ui-monospace, "Cascadia Code", "Source Code Pro", Menlo, Consolas, monospace',
}
FONT_CHOICES = [
    ("system", _("the visitor's system font")),
    ("humanist", _("humanist sans-serif")),
    ("serif", _("serif")),
    ("rounded", _("rounded sans-serif")),
    ("monospace", _("monospace")),
]
LOGO_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "svg")
LOGO_MAX_BYTES = 512 * 1024


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG's contrast ratio of two ``#rrggbb`` colours, from 1 to 21."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def validate_brand_colour(value: str) -> None:
    """The brand colour is both link text on white and the background of white header text, so
    it must reach AA contrast against white."""
    if not COLOUR.match(value):
        raise ValidationError(_("Write the colour as #rrggbb, for example #12417a."))
    ratio = contrast_ratio(value, WHITE)
    if ratio < AA_TEXT:
        raise ValidationError(
            _(
                "This colour is too light: its contrast with white is %(ratio).1f:1, and "
                "accessible text needs at least 4.5:1. Choose a darker shade."
            ),
            params={"ratio": ratio},
        )


def _looks_like(extension: str, head: bytes) -> bool:
    """Whether the file's first bytes are those of the image its name announces."""
    if extension == "png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if extension in ("jpg", "jpeg"):
        return head.startswith(b"\xff\xd8\xff")
    if extension == "webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<svg", b"<?xml", b"<!--")) and b"<svg" in text


def validate_logo(file) -> None:
    name = (file.name or "").lower()
    extension = name.rsplit(".", 1)[-1] if "." in name else ""
    if extension not in LOGO_EXTENSIONS:
        raise ValidationError(_("The logo must be a PNG, JPEG, WebP or SVG image."))
    if file.size > LOGO_MAX_BYTES:
        raise ValidationError(_("The logo must weigh less than 512 KB."))
    file.seek(0)
    head = file.read(1024)
    file.seek(0)
    if not _looks_like(extension, head):
        raise ValidationError(
            _("This file is not the %(kind)s image its name says."),
            params={"kind": extension.upper()},
        )


def font_stack(code: str) -> str:
    return FONTS.get(code) or FONTS["system"]
