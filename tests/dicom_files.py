"""Small DICOM files the tests write themselves (pydicom, the `[dicom]` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)


def write_dicom(
    path: Path,
    stored: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    signed: bool = False,
    transfer_syntax: str = ExplicitVRLittleEndian,
    **elements: object,
) -> Path:
    """Write `stored` as a DICOM file at `path` and return `path`.

    Args:
        stored: `(H, W)` grey, `(F, H, W)` frames, or `(H, W, 3)` colour (`photometric="RGB"`),
            integers written as 16-bit words (8-bit for RGB).
        photometric: PhotometricInterpretation.
        bits_stored: BitsStored of the grey words.
        signed: PixelRepresentation 1 (signed words).
        transfer_syntax: the file's transfer syntax; an encapsulated one gets a fake fragment
            as its pixel data.
        elements: further elements by keyword (RescaleSlope=2, WindowCenter=..., ...).
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    colour = photometric == "RGB"
    ds.Rows, ds.Columns = stored.shape[1:3] if stored.ndim == 3 and not colour else stored.shape[:2]
    if stored.ndim == 3 and not colour:
        ds.NumberOfFrames = stored.shape[0]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.PlanarConfiguration = 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
    else:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    dtype = np.uint8 if colour else (np.int16 if signed else np.uint16)
    data = stored.astype(dtype).tobytes()
    if meta.TransferSyntaxUID.is_encapsulated:
        ds.PixelData = encapsulate([b"\xff\xd8 not really compressed \xff\xd9"])
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = data
    ds.save_as(path, enforce_file_format=True)
    return path


def ramp(size: int = 16, top: int = 4095) -> np.ndarray:
    """`(size, size)` integers from 0 to `top`, increasing along the rows."""
    return np.round(np.linspace(0, top, size * size)).astype(np.int64).reshape(size, size)
