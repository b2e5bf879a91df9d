"""Data: bundled MNIST, IDX files, MedMNIST npz, image folders, DICOM files, synthetic chest X-rays."""

from xai_gen.data.dicom import read_dicom
from xai_gen.data.folder import ImageFolderDataset
from xai_gen.data.idx import load_idx, read_idx
from xai_gen.data.medmnist import load_medmnist_npz
from xai_gen.data.mnist import VALUE_RANGE, ImageSplit, MNIST5k, mnist_5k
from xai_gen.data.synthetic_cxr import SyntheticCXR, synthetic_cxr

__all__ = [
    "VALUE_RANGE",
    "ImageSplit",
    "MNIST5k",
    "mnist_5k",
    "read_idx",
    "load_idx",
    "load_medmnist_npz",
    "ImageFolderDataset",
    "read_dicom",
    "synthetic_cxr",
    "SyntheticCXR",
]
