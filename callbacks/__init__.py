"""privrob's Lightning Callbacks (top-level package, as the project's layout asks)."""

from callbacks.membership_inference import MembershipInference

__all__ = ["MembershipInference"]
