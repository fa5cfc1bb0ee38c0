"""Data sets (real and controlled), caches, samplers and loaders."""

from invlab.data.arrays import ImageArray
from invlab.data.cache import cache_dir
from invlab.data.cifar import CIFAR10_CLASSES, load_cifar10
from invlab.data.digits import load_digits_array
from invlab.data.image_folder import load_image_folder
from invlab.data.loader import ArrayDataset, EpochShuffleSampler, ImageDataModule, array_loader
from invlab.data.registry import IMAGE_DATASETS, channel_stats, load_image_dataset

__all__ = [
    "ImageArray", "cache_dir", "CIFAR10_CLASSES", "load_cifar10", "load_digits_array",
    "load_image_folder", "ArrayDataset", "EpochShuffleSampler", "ImageDataModule", "array_loader",
    "IMAGE_DATASETS", "channel_stats", "load_image_dataset",
]
