"""IDX files (the MNIST / Fashion-MNIST format), gzipped or plain, read without downloads."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from xai_gen.data.mnist import ImageSplit, to_model_range

# Third byte of the magic number -> big-endian element type (the IDX format's type codes).
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes."""
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path} is not a readable gzip file (truncated?): {err}") from err


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file into a numpy array of its stored type and shape.

    The header is the magic number `0x00 0x00 <type> <ndim>` followed by `ndim` big-endian
    uint32 sizes; the data follow in C order. Gzip compression is recognised by the file's
    first bytes, not by its name.

    Args:
        path: an IDX file, e.g. `train-images-idx3-ubyte` or `t10k-labels-idx1-ubyte.gz`.

    Returns:
        Array of the stored shape in native byte order, e.g. images `(N, 28, 28)` uint8 or
        labels `(N,)` uint8.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not an IDX file (bad magic or type code), or its data are truncated or
            followed by extra bytes.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.idx"
        >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
        >>> read_idx(p)
        array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path} is not an IDX file: bad magic number {raw[:4].hex() or '(empty)'}"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file: unknown type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: header needs {header} bytes, file has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(
            f"{path} is {what}: shape {shape} of {dtype.name} needs {expected} bytes, "
            f"file has {len(raw)}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def load_idx(images_path: str | Path, labels_path: str | Path) -> ImageSplit:
    """Load an IDX image file and its IDX label file (MNIST, Fashion-MNIST, KMNIST, ...).

    Args:
        images_path: IDX file of `(N, H, W)` uint8 pixels (0 = background).
        labels_path: IDX file of `(N,)` integer labels.

    Returns:
        `ImageSplit` with images `(N, 1, H, W)` float32 in [-1, 1] (`VALUE_RANGE`) and
        labels `(N,)` int64.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file is not IDX, the images are not 3-D uint8, the labels not 1-D
            integers, or the two counts differ.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "img").write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2,
        ...                                    0, 255, 255, 0]))
        >>> _ = (d / "lab").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 1, 5]))
        >>> split = load_idx(d / "img", d / "lab")
        >>> split.images.shape, split.images.flatten().tolist(), split.labels.tolist()
        (torch.Size([1, 1, 2, 2]), [-1.0, 1.0, 1.0, -1.0], [5])
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"images_path must hold (N, H, W) uint8 pixels, got {images.shape} {images.dtype} "
            f"in {images_path}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"labels_path must hold (N,) integer labels, got {labels.shape} {labels.dtype} "
            f"in {labels_path}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"images_path has {len(images)} images but labels_path has {len(labels)} labels"
        )
    return ImageSplit(
        to_model_range(images)[:, None],
        torch.from_numpy(labels.astype(np.int64)),
    )
