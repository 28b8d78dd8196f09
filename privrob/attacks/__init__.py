"""Adversarial attacks: step objects per threat model and the one PGD loop that uses them."""

from privrob.attacks.pgd import BNMode, attack_mode, check_attack_args, check_bn_mode, pgd, run_attack
from privrob.attacks.steps import STEPS, AttackStep, L2Step, LagrangianStep, LinfStep, StudyWRMStep

__all__ = ["STEPS", "AttackStep", "BNMode", "L2Step", "LagrangianStep", "LinfStep", "StudyWRMStep", "attack_mode",
           "check_attack_args", "check_bn_mode", "pgd", "run_attack"]
