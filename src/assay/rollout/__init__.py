"""Rollouts: plans, traffic split, shadow, sequential gates and the launch gate."""

from assay.rollout._evaluate import Evaluation, GateRow, apply, evaluate, evaluate_live
from assay.rollout._gates import DEFAULT_GATES, Gate, parse_gates
from assay.rollout._launch import (
    DEFAULT_POLICIES,
    Criterion,
    CriterionResult,
    Holdout,
    LaunchCheck,
    LaunchPolicy,
    ModelCard,
    SignOff,
    clopper_pearson,
    launch_check,
    launch_ready,
    record_holdout,
    sign,
    signoffs,
)
from assay.rollout._plan import Rollout, RolloutStore, Transition, rollouts, routing

__all__ = [
    "DEFAULT_GATES",
    "DEFAULT_POLICIES",
    "Criterion",
    "CriterionResult",
    "Evaluation",
    "Gate",
    "GateRow",
    "Holdout",
    "LaunchCheck",
    "LaunchPolicy",
    "ModelCard",
    "Rollout",
    "RolloutStore",
    "SignOff",
    "Transition",
    "apply",
    "clopper_pearson",
    "evaluate",
    "evaluate_live",
    "launch_check",
    "launch_ready",
    "parse_gates",
    "record_holdout",
    "rollouts",
    "routing",
    "sign",
    "signoffs",
]
