"""DICOM files in `folder:` data and `ImageFolderDataset`: the display pipeline, depth, errors.

Every file is written by the test itself (tests/dicom_files.py); the test command installs
the `[dicom]` extra, so a missing pydicom fails here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from dicom_files import ramp, write_dicom
from PIL import Image
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLSLossless

import xai_gen as xg
from xai_gen.cli import main
from xai_gen.data import ImageFolderDataset, read_dicom
from xai_gen.jobs import FolderSource, read_index

STORED = ramp(16, 4095)  # 12-bit stored values 0 .. 4095


def test_monochrome1_twin_loads_like_monochrome2(tmp_path):
    plain = write_dicom(tmp_path / "m2.dcm", STORED)
    inverted = write_dicom(tmp_path / "m1.dcm", 4095 - STORED, photometric="MONOCHROME1")
    np.testing.assert_array_equal(read_dicom(inverted), read_dicom(plain))
    assert read_dicom(plain)[0, 0] == 0.0 and read_dicom(plain)[-1, -1] == 1.0
    # The same with a window (on the stored values of each file).
    plain = write_dicom(tmp_path / "w2.dcm", STORED, WindowCenter=1000, WindowWidth=1000)
    inverted = write_dicom(
        tmp_path / "w1.dcm", 4095 - STORED, photometric="MONOCHROME1",
        WindowCenter=4095 - 1000 + 1, WindowWidth=1000,
    )  # LINEAR windows are centred at c - 0.5: the mirror of c about 4095 / 2 is 4096 - c
    np.testing.assert_allclose(read_dicom(inverted), read_dicom(plain), atol=1e-6)


def test_rescaled_twin_loads_like_plain(tmp_path):
    # 13-bit words: the plain twin stores 0 .. 8190, the rescaled one 50 .. 4145.
    plain = write_dicom(tmp_path / "plain.dcm", 2 * STORED, bits_stored=13)
    rescaled = write_dicom(
        tmp_path / "rescaled.dcm", STORED + 50, bits_stored=13, RescaleSlope=2, RescaleIntercept=-100
    )  # 2 * (s + 50) - 100 = 2 * s: the same modality values, stored differently
    np.testing.assert_allclose(read_dicom(rescaled), read_dicom(plain), atol=1e-6)
    # A window is in modality units: the same window on both twins gives the same image.
    window = {"WindowCenter": 3000, "WindowWidth": 2000, "bits_stored": 13}
    plain = write_dicom(tmp_path / "pw.dcm", 2 * STORED, **window)
    rescaled = write_dicom(
        tmp_path / "rw.dcm", STORED + 50, RescaleSlope=2, RescaleIntercept=-100, **window
    )
    windowed = read_dicom(rescaled)
    np.testing.assert_allclose(windowed, read_dicom(plain), atol=1e-6)
    assert (windowed == 0).any() and (windowed == 1).any()  # the window, not the value range


def test_the_window_is_applied(tmp_path):
    path = write_dicom(tmp_path / "w.dcm", STORED, WindowCenter=2048, WindowWidth=1024)
    pixels = read_dicom(path)
    values = STORED.astype(np.float64)
    expected = np.clip((values - (2048 - 0.5)) / (1024 - 1) + 0.5, 0.0, 1.0)  # PS3.3 C.11.2.1.2
    np.testing.assert_allclose(pixels, expected, atol=1e-6)
    assert (pixels[values < 1536] == 0).all() and (pixels[values > 2560] == 1).all()
    assert 0 < pixels[(values > 1600) & (values < 2500)].min() < 1


def test_a_voi_lut_sequence_is_applied(tmp_path):
    item = pydicom.Dataset()
    item.add_new("LUTDescriptor", "US", [256, 0, 8])  # 256 entries from value 0, 8-bit out
    item.add_new("LUTData", "US", list(range(255, -1, -1)))  # an inverting LUT
    stored = ramp(16, 255)
    path = write_dicom(tmp_path / "lut.dcm", stored, bits_stored=8, VOILUTSequence=[item])
    np.testing.assert_allclose(read_dicom(path), (255 - stored) / 255, atol=1e-6)


def test_twelve_bit_values_a_step_apart_stay_apart(tmp_path):
    stored = np.full((16, 16), 2000)
    stored[:, 8:] = 2001
    stored[0, 0], stored[-1, -1] = 0, 4095  # the file's value range is the 12-bit range
    path = write_dicom(tmp_path / "deep.dcm", stored)
    pixels = read_dicom(path)
    assert pixels.dtype == np.float32
    np.testing.assert_allclose(pixels[5, 9] - pixels[5, 2], 1 / 4095, rtol=1e-3)
    # Through the dataset (no resize at the native size), still one 12-bit step apart.
    image = ImageFolderDataset(tmp_path, size=16)[0][0]
    assert image.shape == (1, 16, 16)
    np.testing.assert_allclose(float(image[0, 5, 9] - image[0, 5, 2]), 2 / 4095, rtol=1e-3)
    assert len(torch.unique(image[0, 1:-1])) == 2


def test_grey_dicom_in_a_dataset_and_with_three_channels(tmp_path):
    write_dicom(tmp_path / "a.dcm", STORED)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "b.png")
    ds = ImageFolderDataset(tmp_path, size=8)
    assert ds.channels == 1 and [p.name for p in ds.paths] == ["a.dcm", "b.png"]
    grey = ds[0][0]
    assert grey.shape == (1, 8, 8) and grey.min() >= -1 and grey.max() <= 1
    rgb = ImageFolderDataset(tmp_path, size=8, channels=3)[0][0]
    # Exact: the grey values are repeated before the resize, which treats channels alike.
    assert rgb.shape == (3, 8, 8) and all(torch.equal(c, grey[0]) for c in rgb)
    source = FolderSource(tmp_path, 8, 3)
    torch.testing.assert_close(source.load(0).image, rgb)


def test_pydicom_example_ct_reads_in_full_range():
    pixels = read_dicom(pydicom.examples.get_path("ct"))  # signed 16-bit, rescale to HU
    assert pixels.shape == (128, 128) and (pixels.min(), pixels.max()) == (0.0, 1.0)


def test_broken_multi_frame_colour_and_non_dicom_files_are_named(tmp_path):
    good = write_dicom(tmp_path / "good.dcm", STORED)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(good.read_bytes()[:-100])  # header intact, pixel data truncated
    with pytest.raises(ValueError, match=r"cannot decode DICOM .*cut\.dcm: broken pixel data"):
        read_dicom(cut)
    half = tmp_path / "half.dcm"
    half.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValueError, match=r"half\.dcm: no pixel data \(a truncated file"):
        read_dicom(half)
    frames = write_dicom(tmp_path / "frames.dcm", np.stack([STORED, STORED]))
    with pytest.raises(ValueError, match=r"frames\.dcm: multi-frame file \(2 frames\)"):
        read_dicom(frames)
    colour = write_dicom(
        tmp_path / "colour.dcm", np.zeros((8, 8, 3), np.uint8), photometric="RGB"
    )
    with pytest.raises(ValueError, match=r"colour\.dcm: colour image \(PhotometricInterpretation RGB"):
        read_dicom(colour)
    text = tmp_path / "text.dcm"
    text.write_text("no DICOM here")
    with pytest.raises(ValueError, match=r"text\.dcm: not a DICOM file"):
        read_dicom(text)
    # A dataset reading headers (channels=None) refuses them when it is made.
    (tmp_path / "frames").mkdir()
    frames.rename(tmp_path / "frames" / "frames.dcm")
    with pytest.raises(ValueError, match=r"frames\.dcm: multi-frame"):
        ImageFolderDataset(tmp_path / "frames")


def test_a_missing_decoder_is_named(tmp_path):
    # The project installs no JPEG-LS decoder (pylibjpeg-libjpeg, pyjpegls): a missing one is
    # what this environment has, so the test can always check the message.
    assert not get_decoder(JPEGLSLossless).is_available, "this test needs an environment without a JPEG-LS decoder"
    path = write_dicom(tmp_path / "jls.dcm", STORED, transfer_syntax=JPEGLSLossless)
    with pytest.raises(ValueError, match=r"jls\.dcm: its pixel data is compressed as JPEG-LS") as err:
        read_dicom(path)
    assert "pylibjpeg" in str(err.value) and "pyjpegls" in str(err.value)


def test_without_pydicom_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)  # `import pydicom` raises ImportError
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    assert len(FolderSource(tmp_path, 8, 1)) == 1  # PNG folders need no pydicom
    assert ImageFolderDataset(tmp_path, size=8)[0][0].shape == (1, 8, 8)
    (tmp_path / "b.dcm").write_bytes(b"")
    with pytest.raises(ImportError, match=r'pip install "xai-gen\[dicom\]"'):
        FolderSource(tmp_path, 8, 1)
    with pytest.raises(ImportError, match=r'pip install "xai-gen\[dicom\]"'):
        ImageFolderDataset(tmp_path, size=8, channels=1)


def test_a_job_skips_broken_and_multi_frame_dicom_with_the_reason(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    write_dicom(root / "a.dcm", rng.integers(0, 4096, (28, 28)))
    write_dicom(root / "c.dcm", rng.integers(0, 4096, (28, 28)), photometric="MONOCHROME1")
    broken = write_dicom(root / "b.dcm", rng.integers(0, 4096, (28, 28)))
    broken.write_bytes(broken.read_bytes()[:-300])
    write_dicom(root / "d.dcm", rng.integers(0, 4096, (2, 28, 28)))
    torch.manual_seed(0)
    model = tmp_path / "model.safetensors"
    xg.save_classifier(xg.SmallCNN(width=4, hidden=8).eval(), model)
    out = tmp_path / "out"
    argv = ["explain", "--data", f"folder:{root}", "--model", str(model), "--methods", "saliency"]
    assert main([*argv, "--threads", "1", "--out", str(out)]) == 0
    index = read_index(out).set_index("id")
    assert index["status"].to_dict() == {
        "a.dcm": "ok", "b.dcm": "skipped", "c.dcm": "ok", "d.dcm": "skipped",
    }
    assert f"cannot decode DICOM {Path(root, 'b.dcm')}: broken pixel data" in index.loc["b.dcm", "reason"]
    assert "d.dcm: multi-frame file (2 frames)" in index.loc["d.dcm", "reason"]
