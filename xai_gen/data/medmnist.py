"""User-supplied MedMNIST `.npz` files (PneumoniaMNIST, ChestMNIST, ...), read without pickle."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from xai_gen.data.mnist import ImageSplit, to_model_range

#: Split names of the MedMNIST `.npz` layout (`<split>_images`, `<split>_labels`).
MEDMNIST_SPLITS = ("train", "val", "test")


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    if not path.is_file():
        raise FileNotFoundError(f"MedMNIST file not found: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npz archive: {err}") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array, not a MedMNIST .npz archive")
    return archive


def _array(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    if key not in archive.files:
        raise KeyError(f"{path} has no '{key}' array; it holds {sorted(archive.files)}")
    try:
        return archive[key]
    except ValueError as err:  # object arrays need pickle, which is never allowed here
        raise ValueError(f"cannot read '{key}' from {path} without pickle: {err}") from err


def load_medmnist_npz(path: str | Path, split: str = "train") -> ImageSplit:
    """Load one split of a MedMNIST `.npz` file, e.g. `pneumoniamnist.npz`.

    The archive holds `train_images`, `train_labels`, `val_images`, `val_labels`,
    `test_images` and `test_labels`. Images are `(N, H, W)` uint8 (grey) or `(N, H, W, 3)`
    uint8 (colour); labels are `(N, 1)` for single-label tasks (PneumoniaMNIST: 0 normal,
    1 pneumonia) and `(N, L)` 0/1 for multi-label tasks (ChestMNIST: L = 14 findings).
    The file is read with `allow_pickle=False`.

    Args:
        path: the `.npz` file.
        split: `"train"`, `"val"` or `"test"`.

    Returns:
        `ImageSplit` with images `(N, C, H, W)` float32 in [-1, 1] (`VALUE_RANGE`, C = 1 or 3)
        and labels int64: `(N,)` for single-label files, `(N, L)` for multi-label files.

    Raises:
        FileNotFoundError: `path` does not exist.
        KeyError: the archive lacks `<split>_images` or `<split>_labels`.
        ValueError: unknown `split`, not an `.npz` archive, arrays that need pickle, images
            that are not uint8 `(N, H, W)` / `(N, H, W, 3)`, or counts that differ.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "tiny.npz"
        >>> arrays = {f"{s}_images": np.zeros((2, 28, 28), np.uint8) for s in MEDMNIST_SPLITS}
        >>> arrays |= {f"{s}_labels": np.array([[0], [1]], np.uint8) for s in MEDMNIST_SPLITS}
        >>> np.savez(p, **arrays)
        >>> d = load_medmnist_npz(p, "val")
        >>> d.images.shape, d.labels.tolist(), float(d.images.min())
        (torch.Size([2, 1, 28, 28]), [0, 1], -1.0)
    """
    if split not in MEDMNIST_SPLITS:
        raise ValueError(f"split must be one of {MEDMNIST_SPLITS}, got {split!r}")
    path = Path(path)
    with _open_npz(path) as archive:
        images = _array(archive, f"{split}_images", path)
        labels = _array(archive, f"{split}_labels", path)
    if images.dtype != np.uint8 or not (
        images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)
    ):
        raise ValueError(
            f"{split}_images in {path} must be uint8 (N, H, W) or (N, H, W, 3), "
            f"got {images.shape} {images.dtype}"
        )
    if labels.dtype.kind not in "iub" or labels.ndim not in (1, 2):
        raise ValueError(
            f"{split}_labels in {path} must be integer (N,) or (N, L), "
            f"got {labels.shape} {labels.dtype}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{path} has {len(images)} {split}_images but {len(labels)} {split}_labels"
        )
    pixels = to_model_range(images)
    pixels = pixels[:, None] if images.ndim == 3 else pixels.permute(0, 3, 1, 2).contiguous()
    # (N, 1) single-label files become (N,) class indices; (N, L) multi-label stay 2-D.
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return ImageSplit(pixels, torch.from_numpy(labels.astype(np.int64)))
