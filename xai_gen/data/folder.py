"""A folder of PNG/JPEG/DICOM images with optional labels or continuous targets from a CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from xai_gen.data.dicom import DICOM_SUFFIXES, dicom_channels, is_dicom, read_dicom, require_pydicom
from xai_gen.data.mnist import ImageSplit

#: File suffixes picked up when a folder is listed (a CSV may name any file Pillow decodes,
#: or a `.dcm` file).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", *DICOM_SUFFIXES)
# CSV headers tried, in order, when `image_column` is not given.
_IMAGE_HEADERS = ("image", "file", "filename", "path", "image_path")
# Pillow modes holding one grey channel; every other mode is read as RGB.
_GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L")
# ITU-R 601 luma weights (Pillow's own RGB -> L conversion).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _native_channels(mode: str) -> int:
    return 1 if mode in _GREY_MODES else 3


def require_readers(paths: Sequence[str | Path]) -> None:
    """Raise ImportError (naming the extra to install) if `paths` holds DICOM and pydicom is missing."""
    if any(is_dicom(p) for p in paths):
        require_pydicom()


def _decode(path: Path, channels: int) -> np.ndarray:
    """Pixels of `path` as `(H, W, channels)` float32 in [0, 1]; 16-bit greys keep their depth.

    A `.dcm` file is read by `xai_gen.data.dicom.read_dicom` (grey only, at its full depth).
    """
    if is_dicom(path):
        pixels = read_dicom(path)[..., None]
        return np.repeat(pixels, 3, axis=-1) if channels == 3 else pixels
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode.startswith("I"):  # 16/32-bit grey PNG
                pixels = np.asarray(img, dtype=np.float32)[..., None] / 65535.0
            elif mode == "F":
                pixels = np.asarray(img, dtype=np.float32)[..., None]
            else:
                grey = _native_channels(mode) == 1
                pixels = np.asarray(img.convert("L" if grey else "RGB"), dtype=np.float32)
                pixels = (pixels[..., None] if grey else pixels) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot decode image {path}: {err}") from err
    pixels = np.clip(pixels, 0.0, 1.0)
    if pixels.shape[-1] == 3 and channels == 1:
        pixels = (pixels @ _LUMA)[..., None]
    elif pixels.shape[-1] == 1 and channels == 3:
        pixels = np.repeat(pixels, 3, axis=-1)
    return pixels


def _background(pixels: Tensor) -> Tensor:
    """Per-channel median of the border pixels of `pixels: (C, H, W)` -> `(C, 1, 1)`."""
    border = torch.cat([pixels[:, 0], pixels[:, -1], pixels[:, :, 0], pixels[:, :, -1]], dim=1)
    return border.median(dim=1).values[:, None, None]


def letterbox(pixels: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Scale `pixels: (C, H, W)` so the longer side is `size`, keep the aspect, pad to square.

    The padding takes the image's background: the per-channel median of its border pixels
    (black for radiographs and digits).

    Args:
        pixels: `(C, H, W)` float image.
        size: side S of the square result.

    Returns:
        `(square (C, S, S), background (C, 1, 1))`.

    Example:
        >>> import torch
        >>> wide = torch.zeros(1, 4, 8)
        >>> wide[:, 1:3, 2:6] = 1.0  # a 2 x 4 bright block on a black background
        >>> square, background = letterbox(wide, 8)
        >>> square.shape, square[0, :, 3].tolist(), background.flatten().tolist()
        (torch.Size([1, 8, 8]), [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0], [0.0])
    """
    c, h, w = pixels.shape
    background = _background(pixels)
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        pixels = F.interpolate(
            pixels[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True
        )[0]
    out = background.expand(c, size, size).clone()
    top, left = (size - nh) // 2, (size - nw) // 2
    out[:, top : top + nh, left : left + nw] = pixels
    return out, background


def translate_image(image: Tensor, dy: int, dx: int, fill: Tensor) -> Tensor:
    """Shift `image: (C, S, S)` by `dy` rows down and `dx` columns right, filling with `fill`.

    Example:
        >>> import torch
        >>> translate_image(torch.arange(4.0).reshape(1, 2, 2), 0, 1, torch.zeros(1, 1, 1))
        tensor([[[0., 0.],
                 [0., 2.]]])
    """
    c, h, w = image.shape
    out = fill.expand(c, h, w).clone()
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src = image[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    out[:, max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)] = src
    return out


def _parse_targets(
    values: list[str], column: str, csv_path: Path
) -> tuple[Tensor, list[str] | None]:
    """CSV cells -> int64 class indices, float32 targets, or indices of sorted class names."""
    for row, v in enumerate(values, start=2):
        if not v.strip():
            raise ValueError(f"{csv_path} row {row}: empty value in target column '{column}'")
    try:
        return torch.tensor([int(v) for v in values], dtype=torch.int64), None
    except ValueError:
        pass
    try:
        return torch.tensor([float(v) for v in values], dtype=torch.float32), None
    except ValueError:
        classes = sorted(set(v.strip() for v in values))
        index = {name: i for i, name in enumerate(classes)}
        return torch.tensor([index[v.strip()] for v in values], dtype=torch.int64), classes


def _pick_column(
    header: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, csv_path: Path
) -> str:
    if wanted is not None:
        if wanted not in header:
            raise ValueError(f"{what} {wanted!r} is not a column of {csv_path}: {list(header)}")
        return wanted
    for name in candidates:
        if name in header:
            return name
    raise ValueError(
        f"cannot tell which column of {csv_path} is the {what.replace('_', ' ')}; "
        f"pass {what}= one of {list(header)}"
    )


def read_labels_csv(
    csv_path: str | Path, target_column: str | None = None, image_column: str | None = None
) -> tuple[list[str], Tensor, list[str] | None]:
    """The rows of a labels CSV: image names, targets and class names.

    Columns are picked as `ImageFolderDataset` documents: `image_column` else the first of
    `image`, `file`, `filename`, `path`, `image_path` (else the first column);
    `target_column` else the only other column. Targets parse as in `ImageFolderDataset`.

    Returns:
        `(names as written, stripped; targets (N,); sorted class names or None)`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: no rows, unknown or ambiguous columns, empty target cells.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"labels_csv not found: {csv_path}")
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    if not rows:
        raise ValueError(f"{csv_path} has no rows below its header")
    image_key = _pick_column(
        header, image_column, [*_IMAGE_HEADERS, header[0]], "image_column", csv_path
    )
    others = [h for h in header if h != image_key]
    target_key = _pick_column(
        header, target_column, others if len(others) == 1 else [], "target_column", csv_path
    )
    targets, classes = _parse_targets([row[target_key] or "" for row in rows], target_key, csv_path)
    return [(row[image_key] or "").strip() for row in rows], targets, classes


class ImageFolderDataset(Dataset):
    """PNG/JPEG/DICOM images under `root`, letterboxed to `size` x `size`, with labels or targets.

    Preprocessing follows the GVR paper (Sec. 2): each image is scaled to `size` x `size`
    keeping its aspect ratio by letterboxing (padding with the image's background, the
    median of its border pixels), then randomly translated by up to `translate` pixels
    (paper: 128 x 128, up to 8 px). The shift of item `i` is drawn from a generator seeded
    with `(seed, epoch, i)`, so a given item, seed and epoch always give the same image;
    call `set_epoch` to draw new shifts each epoch.

    Targets come from, in this order:

    * `labels_csv`: one row per image; `image_column` holds paths relative to `root` (or
      absolute); `target_column` holds integers (-> int64 classes), numbers (-> float32
      continuous targets, e.g. the paper's log(BNP)/10) or names (-> int64 indices into the
      sorted `classes`). Only the images the CSV lists are used, in its order.
    * otherwise sub-folders: `root/<class>/*.png` gives int64 indices into the sorted
      folder names `classes`, like torchvision's `ImageFolder`;
    * otherwise (a flat folder, unlabelled) every target is -1.

    DICOM files (`.dcm`, single-frame grey) are read through pydicom, the `[dicom]` extra:
    modality LUT, then VOI LUT or window (else the file's own value range), MONOCHROME1
    inverted, at full depth (see `xai_gen.data.dicom.read_dicom`).

    Args:
        root: folder of images (searched recursively when there is no CSV).
        labels_csv: optional CSV with a header row.
        size: side S of the returned square images.
        translate: largest random shift in pixels (0 = none), applied in `__getitem__`.
        channels: force 1 (grey, by luma) or 3 (RGB); None keeps the files' channel count,
            which must then be the same for all.
        target_column: CSV column of targets; default: the only column besides the image
            column.
        image_column: CSV column of file names; default: the first of `image`, `file`,
            `filename`, `path`, `image_path` present, else the first column.
        seed: seed of the random translations.

    Attributes:
        paths: `list[Path]` of the N images.
        targets: `(N,)` int64 labels or float32 continuous targets.
        classes: class names for folder / named labels, else None.
        channels: C of the returned images.

    Raises:
        FileNotFoundError: `root` or `labels_csv` missing, or a CSV row naming a missing file.
        ImportError: `.dcm` files and no pydicom (`pip install "xai-gen[dicom]"`).
        ValueError: no images, an image that cannot be decoded (named), mixed channel counts
            with `channels=None`, unknown columns, empty target cells, or bad arguments; a
            multi-frame or colour DICOM (named) when `channels=None`.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for i in range(2):
        ...     Image.fromarray(np.full((30, 20), 200 * i, np.uint8)).save(root / f"{i}.png")
        >>> _ = (root / "labels.csv").write_text("image,bnp\\n0.png,0.25\\n1.png,0.75\\n")
        >>> ds = ImageFolderDataset(root, root / "labels.csv", size=16, translate=2)
        >>> image, target = ds[1]
        >>> image.shape, float(target), ds.targets.dtype
        (torch.Size([1, 16, 16]), 0.75, torch.float32)
    """

    def __init__(
        self,
        root: str | Path,
        labels_csv: str | Path | None = None,
        size: int = 128,
        translate: int = 0,
        channels: int | None = None,
        target_column: str | None = None,
        image_column: str | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        if not isinstance(translate, int) or not 0 <= translate < size:
            raise ValueError(f"translate must be an int in [0, size), got {translate!r}")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
        self.root = Path(root)
        if not self.root.exists():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        if not self.root.is_dir():
            raise NotADirectoryError(f"root must be a folder, got the file {self.root}")
        self.size, self.translate, self.seed, self.epoch = size, translate, seed, 0
        self.classes: list[str] | None = None
        if labels_csv is None:
            self.paths, self.targets = self._from_folder()
        else:
            self.paths, self.targets = self._from_csv(Path(labels_csv), target_column, image_column)
        require_readers(self.paths)
        self.channels = channels or self._common_channels()

    def _from_folder(self) -> tuple[list[Path], Tensor]:
        paths = sorted(
            p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not paths:
            raise ValueError(f"no {'/'.join(IMAGE_SUFFIXES)} images found under {self.root}")
        parts = [p.relative_to(self.root).parts for p in paths]
        nested = [len(q) > 1 for q in parts]
        if not any(nested):
            return paths, torch.full((len(paths),), -1, dtype=torch.int64)
        if not all(nested):
            loose = paths[nested.index(False)]
            raise ValueError(
                f"{self.root} mixes class sub-folders with loose images such as {loose.name}; "
                "move every image into a class folder or pass labels_csv"
            )
        self.classes = sorted({q[0] for q in parts})
        index = {name: i for i, name in enumerate(self.classes)}
        return paths, torch.tensor([index[q[0]] for q in parts], dtype=torch.int64)

    def _from_csv(
        self, csv_path: Path, target_column: str | None, image_column: str | None
    ) -> tuple[list[Path], Tensor]:
        names, targets, self.classes = read_labels_csv(csv_path, target_column, image_column)
        paths = []
        for row_number, name in enumerate(names, start=2):
            path = self.root / name
            if not path.is_file():
                raise FileNotFoundError(
                    f"{csv_path} row {row_number} names {name!r}, "
                    f"which is not a file under {self.root}"
                )
            paths.append(path)
        return paths, targets

    def _common_channels(self) -> int:
        """The channel count shared by all files (read from headers only)."""
        seen: dict[int, Path] = {}
        for path in self.paths:
            if is_dicom(path):
                seen.setdefault(dicom_channels(path), path)
                continue
            try:
                with Image.open(path) as img:
                    seen.setdefault(_native_channels(img.mode), path)
            except (UnidentifiedImageError, OSError) as err:
                raise ValueError(f"cannot decode image {path}: {err}") from err
        if len(seen) > 1:
            raise ValueError(
                f"images under {self.root} mix channel counts: {seen[1].name} is grey, "
                f"{seen[3].name} is colour; pass channels=1 or channels=3"
            )
        return next(iter(seen))

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of random translations (seeded by `(seed, epoch, index)`)."""
        self.epoch = int(epoch)

    def load(self, index: int, translate: bool = True) -> Tensor:
        """Image `index` as `(C, S, S)` float32 in [-1, 1], translated when `translate`."""
        pixels = torch.from_numpy(_decode(self.paths[index], self.channels)).permute(2, 0, 1)
        image, background = letterbox(pixels.contiguous(), self.size)
        if translate and self.translate:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            dy, dx = (int(v) for v in rng.integers(-self.translate, self.translate + 1, size=2))
            image = translate_image(image, dy, dx, background)
        return image * 2.0 - 1.0

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        """`(image (C, S, S) float32 in [-1, 1], target 0-d tensor)`."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index = index % len(self)
        return self.load(index), self.targets[index]

    def to_split(self, progress: bool = True) -> ImageSplit:
        """All images, untranslated, in one `ImageSplit`.

        Args:
            progress: show a tqdm bar.

        Returns:
            `ImageSplit(images (N, C, S, S) float32 in [-1, 1], labels = targets (N,))`.

        Example:
            >>> import tempfile, pathlib, numpy as np
            >>> from PIL import Image
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> for name in ("cat", "dog"):
            ...     (root / name).mkdir()
            ...     Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / name / "a.jpg")
            >>> split = ImageFolderDataset(root, size=4).to_split(progress=False)
            >>> split.images.shape, split.labels.tolist()
            (torch.Size([2, 3, 4, 4]), [0, 1])
        """
        bar = tqdm(range(len(self)), desc="images", disable=not progress)
        images = torch.stack([self.load(i, translate=False) for i in bar])
        return ImageSplit(images, self.targets.clone(), self.classes)
