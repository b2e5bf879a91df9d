"""Single-frame grey DICOM files (`.dcm`) as float images, read through pydicom.

pydicom is an optional extra (`pip install "xai-gen[dicom]"`); it is imported only when a
`.dcm` file is read, so the rest of the package works without it.

A file's stored values go through the display pipeline of the DICOM standard (PS3.3 C.11),
using pydicom's own functions:

1. the modality LUT (`RescaleSlope` / `RescaleIntercept`, or a Modality LUT Sequence):
   `pydicom.pixels.apply_modality_lut`;
2. the VOI LUT Sequence where present (`pydicom.pixels.apply_voi`), else the window
   (`WindowCenter` / `WindowWidth`, `pydicom.pixels.apply_windowing`) where present;
3. the result is scaled to [0, 1]: the VOI LUT's output range, or the window's (below the
   window -> 0, above it -> 1), or, without either, the range of the values the file holds
   (its darkest pixel -> 0, its brightest -> 1);
4. MONOCHROME1 (where the lowest value is white) is inverted, so that 1 is always white.

The values stay in floating point from the stored integers to the result: 12- and 16-bit
data keep their depth (no 8-bit step). Multi-frame and colour files are refused with an
error naming the file and the problem, and so is a compressed transfer syntax whose decoder
is not installed (the error names the packages pydicom would use).
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "DICOM_SUFFIXES",
    "INSTALL_HINT",
    "dicom_channels",
    "is_dicom",
    "read_dicom",
    "require_pydicom",
]

#: File suffixes read as DICOM.
DICOM_SUFFIXES = (".dcm",)
#: The command that installs the DICOM reader.
INSTALL_HINT = 'pip install "xai-gen[dicom]"'

_GREY = ("MONOCHROME1", "MONOCHROME2")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# What pydicom raises on a malformed file: a truncated element, a missing or ill-typed tag,
# pixel data of the wrong length, an unsupported LUT.
_MALFORMED = (
    EOFError,
    OSError,
    ValueError,
    KeyError,
    AttributeError,
    TypeError,
    IndexError,
    NotImplementedError,
    RuntimeError,
    struct.error,
)


def is_dicom(path: str | Path) -> bool:
    """Whether `path` is read as DICOM (by its suffix, `.dcm` in any case).

    Example:
        >>> is_dicom("chest/0001.DCM"), is_dicom("chest/0001.png")
        (True, False)
    """
    return Path(path).suffix.lower() in DICOM_SUFFIXES


def require_pydicom() -> ModuleType:
    """The `pydicom` module, or an ImportError saying how to install it.

    Raises:
        ImportError: pydicom is not installed; the message names `pip install "xai-gen[dicom]"`.

    Example:
        >>> require_pydicom().__name__
        'pydicom'
    """
    try:
        import pydicom
    except ImportError as err:
        raise ImportError(f"reading DICOM (.dcm) files needs pydicom: {INSTALL_HINT}") from err
    return pydicom


def _problem(path: Path, what: str) -> ValueError:
    return ValueError(f"cannot decode DICOM {path}: {what}")


def _read(path: Path, stop_before_pixels: bool) -> Any:
    pydicom = require_pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as err:
        raise _problem(path, f"not a DICOM file ({err})") from err
    except _MALFORMED as err:
        raise _problem(path, f"broken file ({type(err).__name__}: {err})") from err


def _check_supported(ds: Any, path: Path) -> None:
    """Refuse what `read_dicom` does not read: several frames, colour, no grey photometry."""
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError) as err:
        raise _problem(path, f"broken image header ({err})") from err
    if frames > 1:
        raise _problem(
            path,
            f"multi-frame file ({frames} frames); only single-frame images are read "
            "(save each frame as its own file)",
        )
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if samples != 1 or photometric not in _GREY:
        if not photometric:
            raise _problem(path, "no PhotometricInterpretation: not an image, or a broken header")
        raise _problem(
            path,
            f"colour image (PhotometricInterpretation {photometric}, {samples} sample(s) per "
            "pixel); only grey MONOCHROME1 / MONOCHROME2 images are read",
        )


def _check_decoder(ds: Any, path: Path) -> None:
    """Refuse a compressed transfer syntax that no installed pydicom plugin decodes."""
    from pydicom.pixels import get_decoder

    uid = ds.file_meta.get("TransferSyntaxUID")
    if uid is None:
        raise _problem(path, "no TransferSyntaxUID in its file meta information")
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as err:
        raise _problem(path, f"transfer syntax {uid.name} ({uid}) is not one pydicom decodes") from err
    if not decoder.is_available:
        options = "; ".join(decoder.missing_dependencies)
        raise _problem(
            path,
            f"its pixel data is compressed as {uid.name} and no decoder for it is installed; "
            f"install the packages of one of pydicom's decoders: {options}",
        )


def _voi(values: np.ndarray, ds: Any) -> tuple[np.ndarray, float, float]:
    """The VOI LUT or window applied to modality `values`, with its output range."""
    from pydicom.pixels import apply_voi, apply_windowing

    if ds.get("VOILUTSequence"):
        if np.issubdtype(values.dtype, np.floating) and np.array_equal(values, np.round(values)):
            values = values.astype(np.int64)  # a LUT is indexed by integers (rescale 1 / 0)
        depth = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        return apply_voi(values, ds), 0.0, float(2**depth - 1)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        # The window's output range as pydicom maps it: values below the window go to its
        # lowest output, values above it to its highest.
        low, high = apply_windowing(np.array([-np.inf, np.inf]), ds)
        return apply_windowing(values, ds), float(low), float(high)
    return values, float(values.min()), float(values.max())


def dicom_channels(path: str | Path) -> int:
    """The channel count of a DICOM file (always 1), read from its header only.

    Raises:
        ImportError: pydicom is not installed.
        ValueError: the file is not DICOM, is broken, multi-frame or colour (named).

    Example:
        >>> from pydicom import examples
        >>> dicom_channels(examples.get_path("ct"))
        1
    """
    path = Path(path)
    _check_supported(_read(path, stop_before_pixels=True), path)
    return 1


def read_dicom(path: str | Path) -> np.ndarray:
    """The pixels of a single-frame grey DICOM file as `(H, W)` float32 in [0, 1].

    Modality LUT, then VOI LUT or window where present (else the file's own value range),
    then MONOCHROME1 inverted, as the module describes; 1 is white.

    Args:
        path: a `.dcm` file.

    Returns:
        `(H, W)` float32 in [0, 1], at the full depth of the stored values.

    Raises:
        ImportError: pydicom is not installed (the message says what to install).
        ValueError: naming the file: not DICOM, broken or truncated, multi-frame, colour,
            or compressed with a transfer syntax whose decoder is missing (named).

    Example:
        >>> from pydicom import examples
        >>> ct = read_dicom(examples.get_path("ct"))  # 16-bit CT, rescale to HU, no window
        >>> ct.shape, ct.dtype, float(ct.min()), float(ct.max())
        ((128, 128), dtype('float32'), 0.0, 1.0)
        >>> read_dicom(examples.get_path("rgb_color"))
        Traceback (most recent call last):
        ...
        ValueError: cannot decode DICOM ...examples_rgb_color.dcm: colour image (PhotometricInterpretation RGB, 3 sample(s) per pixel); only grey MONOCHROME1 / MONOCHROME2 images are read
    """
    from pydicom.pixels import apply_modality_lut

    path = Path(path)
    ds = _read(path, stop_before_pixels=False)
    _check_supported(ds, path)
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise _problem(path, "no pixel data (a truncated file, or not an image)")
    _check_decoder(ds, path)
    try:
        values = apply_modality_lut(ds.pixel_array, ds)
        values, low, high = _voi(values, ds)
    except _MALFORMED as err:
        raise _problem(path, f"broken pixel data ({type(err).__name__}: {err})") from err
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise _problem(path, f"pixel data of shape {values.shape}, not one grey image")
    if not np.isfinite(values).all():
        raise _problem(path, "non-finite pixel values")
    span = high - low
    pixels = (values - low) / span if span != 0 else np.zeros_like(values)
    pixels = np.clip(pixels, 0.0, 1.0)
    if str(ds.PhotometricInterpretation).strip() == "MONOCHROME1":
        pixels = 1.0 - pixels
    return pixels.astype(np.float32)
