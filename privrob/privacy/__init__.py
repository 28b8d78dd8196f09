"""Membership inference: the study's metric, modern ones, strategies (I_B, I_A, I_V) and multi-device scoring."""

from privrob.privacy.evaluation import evaluation_mode, score_examples, seeded_subset, shard
from privrob.privacy.functional import (calibrate_threshold, inference_accuracy, membership_report, roc_auc,
                                        threshold_accuracy, tpr_at_fpr, true_label_confidence)
from privrob.privacy.metrics import ExampleScores
from privrob.privacy.strategies import Adversarial, Benign, Strategy, Verified

__all__ = ["Adversarial", "Benign", "ExampleScores", "Strategy", "Verified", "calibrate_threshold", "evaluation_mode",
           "inference_accuracy", "membership_report", "roc_auc", "score_examples", "seeded_subset", "shard",
           "threshold_accuracy", "tpr_at_fpr", "true_label_confidence"]
