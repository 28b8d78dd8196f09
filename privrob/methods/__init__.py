"""Training methods: one LightningModule each, all subclasses of :class:`RobustTraining`."""

from privrob.methods.base import RobustTraining, piecewise_constant
from privrob.methods.natural import NaturalTraining

__all__ = ["NaturalTraining", "RobustTraining", "piecewise_constant"]
