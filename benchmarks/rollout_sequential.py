"""Error rates of the sequential rollout gates over simulated rollouts, against a peeked z-test.

Issue #15, Quality: over at least 200 simulated rollouts per scenario, looking at every
evaluation, the false roll-back rate on an equal candidate must stay at or below 5%, a worse one
(handoff 1.2% -> 3.5%) must be rolled back in at least 95% of runs (median users exposed
reported), a better one promoted in at least 90%; the fixed-horizon two-proportion z-test
evaluated at every look is run on the same streams for comparison.

Each simulated rollout draws its traffic, ``N`` sessions per evaluation, log-uniformly between
``--min-traffic`` and ``--max-traffic``. The canary steps are 1, 5, 25 and 50% of traffic (100%
is the promotion itself), ``--looks-per-step`` evaluations each. At each evaluation the
candidate receives Binomial(N, weight) sessions and the stable version the rest; each session
has the outcome with the arm's probability. Both tests see the cumulative counts at every
evaluation and stop at their first roll-back or promotion; a rollout that ends without either
counts as neither. "Exposed" is the number of candidate sessions (one user each) up to and
including the evaluation that rolled back.

Scenarios (count streams; the outcome per session):

- ``equal``: handoff 1.2% in both arms.
- ``worse``: handoff 1.2% (stable) -> 3.5% (candidate).
- ``slower``: the share of requests slower than the stable version's p95, 5% -> 10% (a
  log-normal latency with sigma 0.5 made 20% slower puts 10% of its requests above the old p95).
  The stable p95 is taken as known and the stable arm's exceedances drawn as Binomial(n, 5%):
  by Bahadur's representation that is the sampling error an estimated p95 adds (see
  ``assay.rollout._sequential``).
- ``better``: handoff 1.2% -> 0.8%.
- ``p95 equal`` and ``p95 slower``: the same tail gate on simulated latencies (log-normal, the
  candidate the same or 20% slower), the stable p95 re-estimated from every stable request so far
  at each look, exactly as ``compare_tail`` counts: this checks that the estimated threshold
  does not break the guarantee.

``--margin`` (default 0) is the tolerated worsening; ``--min-sample`` the observations needed
in each arm before any decision (both tests). Printed: per scenario and test, the roll-back and
promotion rates (with a 95% Wilson interval) and the median (and 90th percentile) number of
candidate sessions at the roll-back, as a Markdown table.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/rollout_sequential.py --rollouts 200 --seed 1
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from _bench import markdown_row, note, print_machine
from assay.rollout._sequential import (
    DEFAULT_MIN_SAMPLE,
    DEFAULT_RHO,
    SequentialResult,
    compare_rates,
    fixed_horizon_rates,
)

STEPS = (0.01, 0.05, 0.25, 0.50)


class Counts:
    """Count streams: each session has the outcome with its arm's probability."""

    def __init__(self, rng: np.random.Generator, stable: float, candidate: float) -> None:
        self.rng, self.rates = rng, (stable, candidate)
        self.xs = self.ns = self.xc = self.nc = 0

    def add(self, n_stable: int, n_candidate: int) -> None:
        self.ns += n_stable
        self.nc += n_candidate
        self.xs += int(self.rng.binomial(n_stable, self.rates[0]))
        self.xc += int(self.rng.binomial(n_candidate, self.rates[1]))

    def counts(self) -> tuple[int, int, int, int]:
        return self.xs, self.ns, self.xc, self.nc


class Latencies:
    """Log-normal request latencies (median 148 ms, sigma 0.5), the candidate ``slowdown`` times
    slower; counted above the p95 of every stable request so far, re-estimated at each look, as
    :func:`assay.rollout._sequential.compare_tail` counts them (the threshold is not known)."""

    def __init__(self, rng: np.random.Generator, slowdown: float) -> None:
        self.rng, self.slowdown = rng, slowdown
        self.stable: list[np.ndarray] = []
        self.candidate: list[np.ndarray] = []

    def add(self, n_stable: int, n_candidate: int) -> None:
        self.stable.append(self.rng.lognormal(5.0, 0.5, n_stable))
        self.candidate.append(self.slowdown * self.rng.lognormal(5.0, 0.5, n_candidate))

    def counts(self) -> tuple[int, int, int, int]:
        s, c = np.concatenate(self.stable), np.concatenate(self.candidate)
        q = float(np.quantile(s, 0.95))
        return int(np.sum(s > q)), int(s.size), int(np.sum(c > q)), int(c.size)


Stream = Counts | Latencies
SCENARIOS: dict[str, tuple[str, Callable[[np.random.Generator], Stream]]] = {
    "equal": ("handoff 1.2% -> 1.2%", lambda rng: Counts(rng, 0.012, 0.012)),
    "worse": ("handoff 1.2% -> 3.5%", lambda rng: Counts(rng, 0.012, 0.035)),
    "slower": ("above stable p95 5% -> 10%", lambda rng: Counts(rng, 0.05, 0.10)),
    "better": ("handoff 1.2% -> 0.8%", lambda rng: Counts(rng, 0.012, 0.008)),
    "p95 equal": ("latencies, same", lambda rng: Latencies(rng, 1.0)),
    "p95 slower": ("latencies, x1.2", lambda rng: Latencies(rng, 1.2)),
}


@dataclass
class Outcome:
    decision: str  # "rollback", "promote" or "none"
    exposed: int  # candidate sessions when the decision was made (or at the end)


def simulate(
    rng: np.random.Generator,
    stream: Stream,
    args: argparse.Namespace,
) -> tuple[Outcome, Outcome]:
    """One rollout: the sequential gate's outcome and the peeked z-test's, on the same stream."""
    traffic = math.exp(rng.uniform(math.log(args.min_traffic), math.log(args.max_traffic)))
    seq: Outcome | None = None
    fixed: Outcome | None = None
    previous: SequentialResult | None = None
    for weight in STEPS:
        for _ in range(args.looks_per_step):
            n = int(rng.poisson(traffic))
            to_candidate = int(rng.binomial(n, weight))
            stream.add(n - to_candidate, to_candidate)
            xs, ns, xc, nc = stream.counts()
            if seq is None:
                previous = compare_rates(
                    xs,
                    ns,
                    xc,
                    nc,
                    alpha=args.alpha,
                    margin=args.margin,
                    rho=args.rho,
                    min_sample=args.min_sample,
                    previous=previous,
                )
                if previous.decision in ("rollback", "promote"):
                    seq = Outcome(previous.decision, nc)
            if fixed is None:
                r = fixed_horizon_rates(
                    xs, ns, xc, nc, alpha=args.alpha, margin=args.margin, min_sample=args.min_sample
                )
                if r.decision in ("rollback", "promote"):
                    fixed = Outcome(r.decision, nc)
            if seq is not None and fixed is not None:
                return seq, fixed
    return seq or Outcome("none", nc), fixed or Outcome("none", nc)


def wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def rate(outcomes: list[Outcome], decision: str) -> str:
    k = sum(o.decision == decision for o in outcomes)
    lo, hi = wilson(k, len(outcomes))
    return f"{k / len(outcomes):.1%} [{lo:.1%}, {hi:.1%}]"


def exposure(outcomes: list[Outcome]) -> str:
    rolled = [o.exposed for o in outcomes if o.decision == "rollback"]
    if not rolled:
        return "-"
    return f"{np.median(rolled):,.0f} (p90 {np.quantile(rolled, 0.9):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-traffic", type=float, default=1_000)
    parser.add_argument("--max-traffic", type=float, default=20_000)
    parser.add_argument("--looks-per-step", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--rho", type=float, default=DEFAULT_RHO)
    parser.add_argument("--min-sample", type=int, default=DEFAULT_MIN_SAMPLE)
    args = parser.parse_args()
    print_machine()
    rng = np.random.default_rng(args.seed)
    rows: list[list[str]] = []
    for name, (what, make) in SCENARIOS.items():
        start = time.perf_counter()
        pairs = [simulate(rng, make(rng), args) for _ in range(args.rollouts)]
        note(f"{name}: {args.rollouts} rollouts in {time.perf_counter() - start:.1f} s")
        for label, outcomes in (
            ("sequential (mSPRT)", [p[0] for p in pairs]),
            ("z-test peeked", [p[1] for p in pairs]),
        ):
            rows.append(
                [
                    name,
                    what,
                    label,
                    rate(outcomes, "rollback"),
                    rate(outcomes, "promote"),
                    exposure(outcomes),
                ]
            )
    looks = len(STEPS) * args.looks_per_step
    print()
    print(
        f"{args.rollouts} rollouts per scenario, {looks} looks each, alpha {args.alpha}, "
        f"margin {args.margin}, rho {args.rho}, min_sample {args.min_sample}, "
        f"{args.min_traffic:,.0f}-{args.max_traffic:,.0f} sessions per look"
    )
    print()
    header = ["scenario", "truth", "test", "roll-back", "promotion", "exposed at roll-back"]
    print(markdown_row(header))
    print(markdown_row(["---"] * len(header)))
    for row in rows:
        print(markdown_row(row))


if __name__ == "__main__":
    main()
