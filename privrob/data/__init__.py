"""LightningDataModules with a seeded member/non-member split (members = training set)."""

from privrob.data.base import ImageTensorDataset, MembershipDataModule, StandardSplitDataModule, per_class_split
from privrob.data.cifar10 import CIFAR10DataModule
from privrob.data.digits import DigitsDataModule
from privrob.data.fmnist import FashionMNISTDataModule
from privrob.data.yale import YaleDataModule

__all__ = ["CIFAR10DataModule", "DigitsDataModule", "FashionMNISTDataModule", "ImageTensorDataset",
           "MembershipDataModule", "StandardSplitDataModule", "YaleDataModule", "per_class_split"]
