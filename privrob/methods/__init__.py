"""Training methods: one LightningModule each, all subclasses of :class:`RobustTraining`."""

from privrob.methods.base import RobustTraining, piecewise_constant
from privrob.methods.natural import NaturalTraining
from privrob.methods.pgd import PGDTraining
from privrob.methods.schedules import linear_ramp
from privrob.methods.trades import TRADESTraining
from privrob.methods.wrm import WRMTraining

__all__ = ["NaturalTraining", "PGDTraining", "RobustTraining", "TRADESTraining", "WRMTraining", "linear_ramp",
           "piecewise_constant"]
