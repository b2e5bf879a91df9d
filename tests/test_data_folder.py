"""ImageFolderDataset: decoding, letterbox, seeded translation, targets and every error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xai_gen.data import ImageFolderDataset


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def dot(size: int = 16, at: tuple[int, int] = (8, 8)) -> np.ndarray:
    """A black square image with one white pixel."""
    pixels = np.zeros((size, size), np.uint8)
    pixels[at] = 255
    return pixels


@pytest.mark.parametrize("name", ["grey.png", "grey.jpg", "grey.jpeg"])
def test_grey_files(tmp_path, name):
    save(tmp_path / name, np.full((12, 12), 255, np.uint8))
    ds = ImageFolderDataset(tmp_path, size=8)
    image, target = ds[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32
    assert image.min() >= 0.95 and image.max() <= 1.0
    assert ds.channels == 1 and int(target) == -1 and ds.classes is None


def test_rgb_and_sixteen_bit_values(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    save(tmp_path / "rgb" / "red.png", rgb)
    image = ImageFolderDataset(tmp_path / "rgb", size=8)[0][0]
    assert image.shape == (3, 8, 8)
    assert image[0].eq(1.0).all() and image[1:].eq(-1.0).all()
    grey = ImageFolderDataset(tmp_path / "rgb", size=8, channels=1)[0][0]
    torch.testing.assert_close(grey, torch.full((1, 8, 8), 2 * 0.299 - 1))
    deep = np.zeros((8, 8), np.uint16)
    deep[:, 4:] = 65535
    save(tmp_path / "deep" / "a.png", deep)
    image = ImageFolderDataset(tmp_path / "deep", size=8)[0][0]
    assert image[0, :, :4].eq(-1.0).all() and image[0, :, 4:].eq(1.0).all()


def test_letterbox_keeps_aspect_and_pads_with_background(tmp_path):
    wide = np.zeros((16, 48), np.uint8)
    wide[4:12, 12:36] = 255  # an 8 x 24 block, aspect 1:3
    save(tmp_path / "wide.png", wide)
    image = ImageFolderDataset(tmp_path, size=24)[0][0][0]  # scale 1/2: 8 x 24 content
    rows, cols = torch.nonzero(image > 0, as_tuple=True)
    assert (rows.min(), rows.max()) == (10, 13) and (cols.min(), cols.max()) == (6, 17)
    assert image[:8].eq(-1.0).all() and image[16:].eq(-1.0).all()
    white = np.full((10, 30), 255, np.uint8)
    white[3:7, 10:20] = 0
    save(tmp_path / "light" / "tall.png", white.T.copy())
    image = ImageFolderDataset(tmp_path / "light", size=30)[0][0][0]
    assert image[:, :10].eq(1.0).all() and image[:, 20:].eq(1.0).all()


def shifts(ds: ImageFolderDataset) -> list[tuple[int, int]]:
    """Displacement of the single white pixel in every item against its untranslated copy."""
    out = []
    for i in range(len(ds)):
        moved = divmod(int(ds[i][0].argmax()), ds.size)
        still = divmod(int(ds.load(i, translate=False).argmax()), ds.size)
        out.append((moved[0] - still[0], moved[1] - still[1]))
    return out


def test_translation_is_bounded_seeded_and_varies(tmp_path):
    save(tmp_path / "dot.png", dot())
    csv = write_csv(tmp_path / "l.csv", ["image,label"] + ["dot.png,0"] * 30)
    ds = ImageFolderDataset(tmp_path, csv, size=16, translate=3, seed=1)
    first = shifts(ds)
    assert all(abs(dy) <= 3 and abs(dx) <= 3 for dy, dx in first)
    assert len(set(first)) > 5
    assert torch.equal(ds[4][0], ds[4][0])
    assert shifts(ImageFolderDataset(tmp_path, csv, size=16, translate=3, seed=1)) == first
    assert shifts(ImageFolderDataset(tmp_path, csv, size=16, translate=3, seed=2)) != first
    ds.set_epoch(1)
    assert shifts(ds) != first
    split = ds.to_split(progress=False)
    assert split.images.shape == (30, 1, 16, 16)
    assert all(divmod(int(im.argmax()), 16) == (8, 8) for im in split.images)


def test_csv_targets_integer_float_and_names(tmp_path):
    for i in range(3):
        save(tmp_path / "img" / f"{i}.png", dot(at=(i, i)))
    ints = write_csv(tmp_path / "i.csv", ["file,label", "img/0.png,2", "img/2.png,0"])
    ds = ImageFolderDataset(tmp_path, ints, size=16)
    assert ds.targets.dtype == torch.int64 and ds.targets.tolist() == [2, 0]
    assert [p.name for p in ds.paths] == ["0.png", "2.png"]
    floats = write_csv(tmp_path / "f.csv", ["id,path,bnp", "a,img/1.png,0.25", "b,img/0.png,0.5"])
    ds = ImageFolderDataset(tmp_path, floats, size=16, target_column="bnp", image_column="path")
    assert ds.targets.dtype == torch.float32 and ds.targets.tolist() == [0.25, 0.5]
    assert ds.to_split(progress=False).labels.tolist() == [0.25, 0.5]
    names = write_csv(
        tmp_path / "n.csv", ["image,finding", "img/0.png,normal", "img/1.png,effusion"]
    )
    ds = ImageFolderDataset(tmp_path, names, size=16)
    assert ds.classes == ["effusion", "normal"] and ds.targets.tolist() == [1, 0]


def test_subfolders_are_classes_and_batches_collate(tmp_path):
    for cls, n in (("normal", 2), ("pneumonia", 3)):
        for i in range(n):
            save(tmp_path / cls / f"{i}.jpg", dot())
    ds = ImageFolderDataset(tmp_path, size=8)
    assert ds.classes == ["normal", "pneumonia"] and ds.targets.tolist() == [0, 0, 1, 1, 1]
    images, targets = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert images.shape == (4, 1, 8, 8) and targets.tolist() == [0, 0, 1, 1]


def test_mixed_channels_need_channels(tmp_path):
    save(tmp_path / "a.png", dot())
    save(tmp_path / "b.png", np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="mix channel counts"):
        ImageFolderDataset(tmp_path)
    for channels in (1, 3):
        ds = ImageFolderDataset(tmp_path, size=8, channels=channels)
        assert {ds[i][0].shape for i in range(2)} == {(channels, 8, 8)}


def test_missing_paths_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        ImageFolderDataset(tmp_path / "none")
    save(tmp_path / "a.png", dot())
    with pytest.raises(FileNotFoundError, match="labels_csv not found"):
        ImageFolderDataset(tmp_path, tmp_path / "none.csv")
    csv = write_csv(tmp_path / "l.csv", ["image,label", "a.png,0", "gone.png,1"])
    with pytest.raises(FileNotFoundError, match="row 3 names 'gone.png'"):
        ImageFolderDataset(tmp_path, csv)
    with pytest.raises(NotADirectoryError):
        ImageFolderDataset(tmp_path / "a.png")


def test_undecodable_images_are_named(tmp_path):
    (tmp_path / "bad" / "x.png").parent.mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"this is no image")
    with pytest.raises(ValueError, match=r"cannot decode image .*x\.png"):
        ImageFolderDataset(tmp_path / "bad")
    data = save(
        tmp_path / "cut" / "y.png", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)
    )
    data.write_bytes(data.read_bytes()[:200])  # header intact, pixel data truncated
    ds = ImageFolderDataset(tmp_path / "cut")
    with pytest.raises(ValueError, match=r"cannot decode image .*y\.png"):
        ds[0]


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        (["image,a,b", "p.png,1,2"], {}, "which column"),
        (["image,label", "p.png,1"], {"target_column": "bnp"}, "not a column"),
        (["image,label", "p.png,"], {}, "empty value"),
        (["image,label"], {}, "no rows"),
    ],
)
def test_bad_csv_raises(tmp_path, rows, kwargs, message):
    save(tmp_path / "p.png", dot())
    with pytest.raises(ValueError, match=message):
        ImageFolderDataset(tmp_path, write_csv(tmp_path / "l.csv", rows), **kwargs)


def test_empty_and_mixed_folders(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no .* images found"):
        ImageFolderDataset(tmp_path)
    save(tmp_path / "loose.png", dot())
    save(tmp_path / "cls" / "a.png", dot())
    with pytest.raises(ValueError, match="loose.png"):
        ImageFolderDataset(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"size": 0}, "size"),
        ({"size": 16, "translate": 16}, "translate"),
        ({"channels": 2}, "channels"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, name):
    save(tmp_path / "a.png", dot())
    with pytest.raises(ValueError, match=name):
        ImageFolderDataset(tmp_path, **kwargs)
