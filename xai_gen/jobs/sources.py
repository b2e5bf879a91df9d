"""Where a data-set job's images come from, one item at a time.

A source is a small, picklable description of a data set (tensors already in memory, a
MedMNIST file, a folder of images) that loads any item on demand. The job's driver only
asks for its length and item names; the workers (one process, or Ray actors on other
machines) load the items of the shards they explain, so the driver never holds the images.

An item that cannot be used (an unreadable file, an image without a labels-CSV row, a CSV
row naming a missing file, non-finite pixels) is returned as an `Item` with a `reason`
instead of raising: the job records it as skipped and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from xai_gen.data.folder import IMAGE_SUFFIXES, _decode, letterbox, read_labels_csv, require_readers
from xai_gen.data.medmnist import load_medmnist_npz
from xai_gen.metrics.registry import GROUND_TRUTH

__all__ = ["FolderSource", "Item", "Source", "TensorSource", "data_source", "medmnist_source"]


@dataclass
class Item:
    """One item of a source.

    Attributes:
        id: the item's name in the index table (a file path, or `"<data>[i]"`).
        image: `(C, H, W)` float32, or None when the item is skipped.
        label: the data set's label (int class or float target), or None when it has none.
        truth: per-item ground truth for the metrics, e.g. `{"masks": (1, H, W)}`.
        reason: why the item is skipped (None for a usable item).
    """

    id: str
    image: Tensor | None
    label: int | float | None = None
    truth: dict[str, Tensor] = field(default_factory=dict)
    reason: str | None = None


class Source(Protocol):
    """What a job needs from a data set: its size, item names and items."""

    def __len__(self) -> int: ...

    def item_id(self, index: int) -> str:
        """The name of item `index` in the index table."""
        ...

    def load(self, index: int) -> Item:
        """Item `index`; a bad item comes back with a `reason`, never as an exception."""
        ...


def _label(value: Tensor) -> int | float | None:
    if value.numel() != 1:  # multi-label rows (ChestMNIST) have no single label to report
        return None
    return value.item()


@dataclass
class TensorSource:
    """Images already in memory: the bundled MNIST digits, synthetic X-rays, a MedMNIST split.

    Args:
        name: prefix of the item ids (`"mnist"` gives `"mnist[0]"`, ...).
        images: `(N, C, H, W)` float images.
        labels: `(N,)` labels or None.
        truth: per-item ground truth, each `(N, ...)` (e.g. `masks`, `true_difference`).
        class_names: names of the label values (index i names class i), where the data set has them.

    Example:
        >>> import torch
        >>> s = TensorSource("demo", torch.zeros(3, 1, 4, 4), torch.tensor([0, 1, 2]))
        >>> len(s), s.item_id(2), s.load(2).label, s.load(2).image.shape
        (3, 'demo[2]', 2, torch.Size([1, 4, 4]))
    """

    name: str
    images: Tensor
    labels: Tensor | None = None
    truth: dict[str, Tensor] = field(default_factory=dict)
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        for key, value in {"labels": self.labels, **self.truth}.items():
            if value is not None and len(value) != n:
                raise ValueError(f"{key} has {len(value)} items but images has {n}")

    def __len__(self) -> int:
        return len(self.images)

    def item_id(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def load(self, index: int) -> Item:
        label = None if self.labels is None else _label(self.labels[index])
        truth = {k: v[index] for k, v in self.truth.items()}
        return Item(self.item_id(index), self.images[index].float(), label, truth)


def data_source(name: str, data: Any) -> TensorSource:
    """A data set held in memory (`.images`, optional `.labels` and ground truth) as a source.

    The ground truth a comparison scores with (`.masks`, `.difference`, `.healthy`) travels
    with each item under the metric input it feeds (`masks`, `true_difference`,
    `true_counterfactuals`), as `xai_gen.compare` reads it.

    Example:
        >>> from xai_gen.data import synthetic_cxr
        >>> s = data_source("cxr", synthetic_cxr(4, size=16))
        >>> len(s), sorted(s.load(0).truth)
        (4, ['masks', 'true_counterfactuals', 'true_difference'])
    """
    truth = {
        key: value for attr, key in GROUND_TRUTH.items() if (value := getattr(data, attr, None)) is not None
    }
    names = getattr(data, "class_names", None)
    return TensorSource(
        name, data.images, getattr(data, "labels", None), truth, None if names is None else tuple(str(n) for n in names)
    )


def medmnist_source(path: str | Path, split: str = "test") -> TensorSource:
    """One split of a MedMNIST `.npz` file as a `TensorSource` (ids `"<file stem>[i]"`)."""
    data = load_medmnist_npz(path, split)
    return TensorSource(Path(path).stem, data.images, data.labels)


@dataclass
class FolderSource:
    """PNG/JPEG/DICOM files under `root`, read one at a time and letterboxed to `size` x `size`.

    Without `labels_csv` the items are the image files under `root` (recursively, sorted)
    and have no label. With it, the items are the CSV's rows in order (label from
    `target_column`) followed by the image files no row names; such a file is skipped
    ("no row in the labels CSV"), and so is a row naming a file that does not exist and any
    file that cannot be decoded (a broken, multi-frame or colour DICOM among them). Pixels
    are scaled to [-1, 1] as `ImageFolderDataset` does; `.dcm` files are read as it reads
    them, through pydicom (the `[dicom]` extra, checked when the source is made).

    Args:
        root: the folder.
        size: side S of the square images the model takes.
        channels: 1 (grey, by luma) or 3 (RGB).
        labels_csv: optional CSV with a header row (see `ImageFolderDataset`).
        target_column, image_column: CSV columns; picked as `ImageFolderDataset` does.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a.png")
        >>> _ = (root / "b.png").write_bytes(b"not a png")
        >>> s = FolderSource(root, size=4, channels=1)
        >>> [s.item_id(i) for i in range(len(s))], s.load(0).image.shape, s.load(1).reason[:15]
        (['a.png', 'b.png'], torch.Size([1, 4, 4]), 'cannot decode i')
    """

    root: str | Path
    size: int
    channels: int
    labels_csv: str | Path | None = None
    target_column: str | None = None
    image_column: str | None = None
    _names: list[str] = field(init=False, repr=False)
    _labels: list[Any] = field(init=False, repr=False)
    _listed: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"folder: {self.root} is not a folder")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a positive int, got {self.size!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels!r}")
        files = sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if self.labels_csv is None:
            self._names, self._labels, self._listed = files, [None] * len(files), len(files)
        else:
            rows, targets, _ = read_labels_csv(
                self.labels_csv, self.target_column, self.image_column
            )
            names, labels = [Path(r).as_posix() for r in rows], targets.tolist()
            listed = set(names)
            unlisted = [f for f in files if f not in listed]
            self._names, self._labels = names + unlisted, labels + [None] * len(unlisted)
            self._listed = len(names)
        if not self._names:
            raise ValueError(f"no {'/'.join(IMAGE_SUFFIXES)} images found under {self.root}")
        require_readers(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def item_id(self, index: int) -> str:
        return self._names[index]

    def load(self, index: int) -> Item:
        name, label = self._names[index], self._labels[index]
        path = self.root / name
        if index >= self._listed:
            return Item(name, None, None, reason="no row in the labels CSV")
        if not path.is_file():
            return Item(name, None, label, reason=f"file not found: {path}")
        try:
            pixels = torch.from_numpy(_decode(path, self.channels)).permute(2, 0, 1)
        except ValueError as err:
            return Item(name, None, label, reason=str(err))
        image, _ = letterbox(pixels.contiguous(), self.size)
        return Item(name, image * 2.0 - 1.0, label)
