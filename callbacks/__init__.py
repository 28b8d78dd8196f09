"""privrob's Lightning Callbacks (top-level package, as the project's layout asks)."""

from callbacks.best_robust import BestRobustCheckpoint
from callbacks.checkpoint import RunCheckpoint
from callbacks.membership_inference import MembershipInference
from callbacks.preemption import Preempted, RequeueOnSignal

__all__ = ["BestRobustCheckpoint", "MembershipInference", "Preempted", "RequeueOnSignal", "RunCheckpoint"]
