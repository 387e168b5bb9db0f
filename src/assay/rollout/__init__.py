"""Rollouts: plans, traffic split, shadow, sequential gates and the launch gate."""

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

__all__ = [
    "DEFAULT_POLICIES",
    "Criterion",
    "CriterionResult",
    "Holdout",
    "LaunchCheck",
    "LaunchPolicy",
    "ModelCard",
    "SignOff",
    "clopper_pearson",
    "launch_check",
    "launch_ready",
    "record_holdout",
    "sign",
    "signoffs",
]
