"""Training methods: one LightningModule each, all subclasses of :class:`RobustTraining`."""

from privrob.methods.base import RobustTraining, piecewise_constant
from privrob.methods.diffai import DiffAITraining
from privrob.methods.ibp import IBPTraining
from privrob.methods.natural import NaturalTraining
from privrob.methods.noise_layer import NoiseLayerTraining
from privrob.methods.pgd import PGDTraining
from privrob.methods.schedules import linear_ramp
from privrob.methods.trades import TRADESTraining
from privrob.methods.wong_kolter import WongKolterTraining
from privrob.methods.wrm import WRMTraining

__all__ = ["DiffAITraining", "IBPTraining", "NaturalTraining", "NoiseLayerTraining", "PGDTraining", "RobustTraining", "TRADESTraining",
           "WRMTraining", "WongKolterTraining", "linear_ramp", "piecewise_constant"]
