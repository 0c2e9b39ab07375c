"""Decode untrusted image bytes safely: sniffed format, size checked before decoding, RGB out."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workers.inputs import fastjpeg
from workers.protocol.errors import BadImage, TooLarge

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "AVIF", "HEIF")
"""Formats we decode; anything else (SVG, PDF, TIFF, …) is refused. AVIF is Pillow's own plugin (libavif, in
its wheels since 11.3); HEIF (HEIC, iPhone photos) is pillow-heif's (libheif), registered by configure_pillow."""

CLASSIC = FORMATS[:5]
"""The formats told apart by their magic bytes; AVIF and HEIF share the ISO BMFF container and are told apart
by its ``ftyp`` brands (see :func:`sniff_isobmff`)."""

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp",
        "AVIF": "image/avif", "HEIF": "image/heif"}

AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
CONTAINER_BRANDS = frozenset({b"mif1", b"msf1"})
"""Generic HEIF container brands: AVIF when an AVIF brand is among the compatible ones, else HEIF (HEVC)."""

FAMILY = {"MPO": "JPEG"}
"""Formats Pillow names apart that we treat as one of FORMATS: a multi-picture camera JPEG (MPO) is opened by
the JPEG plugin, checked and decoded as a JPEG, and only its first picture is used."""

BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited on this colour."""


def configure_pillow() -> None:
    """Turn Pillow's own pixel guard off, once at process start (entry points, the tests' conftest).

    We check declared sizes ourselves (max_image_pixels) before decoding; Pillow's guard would otherwise cap
    the configurable limit and report it as a decode error. Also registers the HEIF opener (safe to call again).
    """
    Image.MAX_IMAGE_PIXELS = None
    register_heif()


_heif_registered = False


def register_heif() -> None:
    """pillow-heif's HEIF/HEIC opener registered with Pillow, once per process (later calls do nothing).

    Thumbnails, depth and auxiliary images are not read: only the primary image is used. libheif applies the
    file's rotation and mirroring (``irot``/``imir``) as it decodes and the plugin resets the EXIF orientation
    to 1, so :func:`decode`'s EXIF transpose does not turn the picture twice.
    """
    global _heif_registered
    if _heif_registered:
        return
    import pillow_heif  # here, not at import: loading libheif is the start-up function's work

    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
    _heif_registered = True


@dataclass(frozen=True)
class Probe:
    format: str
    width: int
    height: int


KNOWN = "JPEG, PNG, GIF, WebP, BMP, AVIF or HEIC"
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, RuntimeError)
"""What a decoder raises on bad bytes; libheif's errors come as ValueError, EOFError or RuntimeError (its
NotImplementedError for an unsupported codec included)."""


def sniff_isobmff(data: bytes) -> str | None:
    """The format, AVIF or HEIF, from an ISO BMFF file's ``ftyp`` brands; None when the bytes start with none.

    An ISO BMFF file of another kind (MP4, QuickTime, JPEG 2000, …) is refused here, before any decoder sees it.
    """
    if data[4:8] != b"ftyp":
        return None
    size = struct.unpack(">I", data[:4])[0]
    end = len(data) if size == 0 else min(size, len(data), 4096)
    major = data[8:12]
    compatible = {data[i:i + 4] for i in range(16, end - 3, 4)}
    if major in AVIF_BRANDS or (major in CONTAINER_BRANDS and compatible & AVIF_BRANDS):
        return "AVIF"
    if major in HEIF_BRANDS or major in CONTAINER_BRANDS:
        return "HEIF"
    raise BadImage(f"not an image we can read ({KNOWN}): an ISO BMFF file of brand {major!r}")


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise BadImage("the file is empty")
    container = sniff_isobmff(data)
    if container == "HEIF":
        register_heif()  # a process that skipped configure_pillow still reads HEIC
    try:
        image = Image.open(io.BytesIO(data), formats=(container,) if container else CLASSIC)
    except UnidentifiedImageError as exc:
        raise BadImage(f"not an image we can read ({KNOWN}): {exc.__class__.__name__}") from exc
    except DECODE_ERRORS as exc:
        raise BadImage(f"corrupt image: {exc}") from exc
    check_size(*image.size, max_pixels)
    return image


def check_size(width: int, height: int, max_pixels: int) -> None:
    """Refuse a declared size with no pixels (BadImage) or more than ``max_pixels`` (TooLarge)."""
    if width < 1 or height < 1:
        raise BadImage("the image has no pixels")
    if width * height > max_pixels:
        raise TooLarge(f"the image is {width}x{height} pixels, over the limit of {max_pixels:,} pixels")


def family(image: Image.Image) -> str:
    """The one of FORMATS the image is decoded as (an MPO is a JPEG)."""
    name = image.format or ""
    return FAMILY.get(name, name)


def probe(data: bytes, max_pixels: int) -> Probe:
    """Format (one of FORMATS) and size of the first picture, from the header only; nothing is decoded."""
    image = _open(data, max_pixels)
    return Probe(family(image), image.width, image.height)


def declared_pixels(data: bytes, max_pixels: int) -> int:
    """Width × height as the header declares them, checked as :func:`probe` checks them; nothing is decoded.

    The common tiles' headers are read directly (a PNG's IHDR, a JPEG's frame through libjpeg-turbo): Pillow's
    parsing costs more than a small tile's whole decode. Anything else, or a header that does not read cleanly,
    goes through :func:`probe`, which gives the precise reason."""
    size = _png_size(data) or fastjpeg.header_size(data)
    if size is None:
        found = probe(data, max_pixels)
        return found.width * found.height
    check_size(*size, max_pixels)
    return size[0] * size[1]


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG whose first chunk is a well-formed IHDR (as Pillow requires); else None."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    if struct.unpack(">I", data[29:33])[0] != zlib.crc32(data[12:29]):
        return None  # Pillow refuses it: let probe say why
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def decode(data: bytes, max_pixels: int, draft_px: int | None = None) -> Image.Image:
    """An upright RGB image; JPEGs are decoded at reduced size when ``draft_px`` allows. A file of several
    pictures gives one: an MPO its first, an AVIF sequence its first frame, a HEIF its primary image."""
    image = _open(data, max_pixels)
    try:
        if draft_px and family(image) == "JPEG":  # an MPO too: its first picture
            image.draft("RGB", (draft_px, draft_px))
        image = ImageOps.exif_transpose(image) or image
        return to_rgb(image)
    except DECODE_ERRORS as exc:
        raise BadImage(f"corrupt image: {exc}") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB from any mode: alpha composited on BACKGROUND, 16-bit scaled down, CMYK converted."""
    if image.mode == "RGB":
        image.load()
        return image
    if image.mode.startswith("I"):  # 16-bit greyscale (PNG gives I;16 or I): full scale is 65535
        array = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(array / 257.0), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" or image.mode in ("LA", "PA", "La"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def square_tile(image: Image.Image, px: int) -> np.ndarray:
    """Centre crop to a square and resize to px×px; uint8 (px, px, 3)."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((px, px), Image.Resampling.LANCZOS, reducing_gap=2.0), dtype=np.uint8)
