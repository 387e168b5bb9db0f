"""Rollouts: plans, traffic split, shadow, sequential gates and the launch gate."""

from assay.models._holdout import Holdout
from assay.rollout._evaluate import Evaluation, GateRow, apply, evaluate, evaluate_live
from assay.rollout._gates import DEFAULT_GATES, Gate, parse_gates
from assay.rollout._launch import (
    DEFAULT_POLICIES,
    Criterion,
    CriterionResult,
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
from assay.rollout._plan import (
    Rollout,
    RolloutStore,
    Transition,
    release_events,
    rollouts,
    routing,
)
from assay.rollout._sequential import (
    Moments,
    SequentialResult,
    compare_means,
    compare_rates,
    compare_tail,
    fixed_horizon_rates,
)

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
    "Moments",
    "Rollout",
    "RolloutStore",
    "SequentialResult",
    "SignOff",
    "Transition",
    "apply",
    "clopper_pearson",
    "compare_means",
    "compare_rates",
    "compare_tail",
    "evaluate",
    "evaluate_live",
    "fixed_horizon_rates",
    "launch_check",
    "launch_ready",
    "parse_gates",
    "record_holdout",
    "release_events",
    "rollouts",
    "routing",
    "sign",
    "signoffs",
]
