"""Data: bundled MNIST, IDX files, MedMNIST npz, image folders, synthetic chest X-rays."""

from xai_gen.data.mnist import VALUE_RANGE, ImageSplit, MNIST5k, mnist_5k

__all__ = ["VALUE_RANGE", "ImageSplit", "MNIST5k", "mnist_5k"]
