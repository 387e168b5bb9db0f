"""Input coercion: every column kind in, the same numbers out; bad input raises UsageError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from assay._errors import UsageError
from assay.evaluation import _inputs
from assay.evaluation._auc import cohort_auc

Y = [0, 1, 0, 1, 1, 0, 1, 0]
S = [0.1, 0.8, 0.4, 0.4, 0.9, 0.3, 0.2, 0.7]
C_INT = [3, 3, 3, 3, 1, 1, 1, 1]
C_STR = ["b", "b", "b", "b", "a", "a", "a", "a"]
# Cohort 1: positives 0.9, 0.2 vs negatives 0.3, 0.7 -> 2 of 4. Cohort 3: 0.8, 0.4 vs 0.1, 0.4.
WANT_INT = {1: 0.5, 3: 0.875}
WANT_STR = {"a": 0.5, "b": 0.875}

CONVERTERS: dict[str, Callable[[list[Any]], Any]] = {
    "list": list,
    "tuple": tuple,
    "numpy": np.asarray,
    "pandas": pd.Series,
    "polars": pl.Series,
    "pyarrow": pa.array,
    "pyarrow_chunked": lambda v: pa.chunked_array([v[:3], v[3:]]),
}


@pytest.mark.parametrize("kind", CONVERTERS)
def test_every_column_kind_gives_the_same_auc(kind: str) -> None:
    to = CONVERTERS[kind]
    assert cohort_auc(to(Y), to(S), to(C_INT)) == WANT_INT
    assert cohort_auc(to(Y), to(S), to(C_STR)) == WANT_STR
    assert cohort_auc(to([bool(v) for v in Y]), to(S), to(C_STR)) == WANT_STR
    weighted = cohort_auc(to(Y), to(S), to(C_STR), sample_weight=to([1.0] * len(Y)))
    assert weighted == WANT_STR


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(C_STR, dtype="category"),
        pd.Series(C_STR, dtype="string"),
        pd.Series(C_INT, dtype="Int64"),
        pl.Series(C_STR, dtype=pl.Categorical),
        pa.array(C_STR).dictionary_encode(),
        pa.chunked_array([C_STR[:5], C_STR[5:]]).dictionary_encode(),
        np.array(C_STR),  # numpy unicode dtype
        np.array(C_INT, dtype=np.uint8),
        np.array(C_INT, dtype=float),
    ],
    ids=lambda c: type(c).__name__ + ":" + str(getattr(c, "dtype", getattr(c, "type", ""))),
)
def test_typed_cohort_columns(column: Any) -> None:
    got = cohort_auc(Y, S, column)
    assert sorted(got.values()) == [0.5, 0.875]
    assert list(got.values()) == [0.5, 0.875]  # keys sorted: "a"/1 first


@pytest.mark.parametrize(
    "column",
    [
        [None, None, "b", "b", "a", "a", "a", "a"],
        np.array([np.nan, np.nan, 3, 3, 1, 1, 1, 1]),
        pd.Series([None, None, "b", "b", "a", "a", "a", "a"]),
        pd.Series([None, None, 3, 3, 1, 1, 1, 1], dtype="Int64"),
        pl.Series([None, None, "b", "b", "a", "a", "a", "a"]),
        pa.array([None, None, 3, 3, 1, 1, 1, 1]),
        pa.array([None, None, "b", "b", "a", "a", "a", "a"]).dictionary_encode(),
    ],
    ids=lambda c: type(c).__name__,
)
def test_null_cohort_is_its_own_group_keyed_none_and_last(column: Any) -> None:
    got = cohort_auc(Y, S, column)
    assert list(got)[-1] is None
    # Null rows: 0 at 0.1 and 1 at 0.8 -> 1.0; the next two rows (0.4 tie) -> 0.5.
    assert list(got.values()) == [0.5, 0.5, 1.0]


def test_cohorts_codes_follow_sorted_values() -> None:
    codes, values = _inputs.cohorts([30, 10, 20, 10], 4)
    assert codes.tolist() == [2, 0, 1, 0]
    assert values == [10, 20, 30]


def test_cohorts_of_unsortable_values_follow_first_appearance() -> None:
    codes, values = _inputs.cohorts([(2, "x"), 1, (2, "x"), None], 4)
    assert values == [(2, "x"), 1, None]
    assert codes.tolist() == [0, 1, 0, 2]


def test_cohorts_with_a_huge_integer_range_use_hashing() -> None:
    ids = np.array([10**15, -(10**15), 10**15, 7])
    codes, values = _inputs.cohorts(ids, 4)
    assert values == [-(10**15), 7, 10**15]
    assert codes.tolist() == [2, 0, 2, 1]


def test_bool_cohorts() -> None:
    codes, values = _inputs.cohorts(np.array([True, False, True]), 3)
    assert (codes.tolist(), values) == ([1, 0, 1], [False, True])


def test_scores_accept_ints_and_bools() -> None:
    assert _inputs.scores([1, True, 0], 3).tolist() == [1.0, 1.0, 0.0]


def test_finite_mask_marks_nan_inf_and_nulls() -> None:
    got = _inputs.finite_mask(pa.array([0.1, None, float("inf"), float("nan"), 2.0]))
    assert got.tolist() == [True, False, False, False, True]


def test_scores_nan_drop_returns_nan_for_missing() -> None:
    got = _inputs.scores(pd.Series([0.5, None], dtype="Float64"), 2, nan="drop")
    assert got[0] == 0.5
    assert np.isnan(got[1])


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cohort_auc([0, 2, 1, 3], [0.1] * 4, [1] * 4), r"2 of 4 values are outside"),
        (lambda: cohort_auc([0, 0.5], [0.1] * 2, [1] * 2), r"outside \{0, 1\}"),
        (lambda: cohort_auc([0, float("nan")], [0.1] * 2, [1] * 2), r"outside \{0, 1\}"),
        (lambda: cohort_auc(["0", "1"], [0.1] * 2, [1] * 2), r"y_true must hold 0/1"),
        (
            lambda: cohort_auc(pd.Series([0, None], dtype="Int64"), [0.1] * 2, [1] * 2),
            r"1 of 2 values are missing \(first at positions \[1\]\)",
        ),
        (lambda: cohort_auc(pa.array([True, None]), [0.1] * 2, [1] * 2), r"are missing"),
        (
            lambda: cohort_auc([0] * 8, [float("nan")] * 8, [1] * 8),
            r"8 of 8 values are NaN.*positions \[0, 1, 2, 3, 4, \.\.\.\].*nan='drop'",
        ),
        (lambda: cohort_auc([0, 1], [0.1, None], [1, 1]), r"NaN, infinite or missing"),
        (lambda: cohort_auc([0, 1], pl.Series([0.1, None]), [1, 1]), r"1 of 2 values are NaN"),
        (lambda: cohort_auc([0, 1], ["a", "b"], [1, 1]), r"y_score must hold numbers"),
        (lambda: cohort_auc([0, 1], [0.1, "x"], [1, 1]), r"y_score must hold numbers"),
        (lambda: cohort_auc([0, 1], [0.1], [1, 1]), r"same length; got y_true=2, y_score=1"),
        (lambda: cohort_auc([0, 1], [0.1, 0.2], [1]), r"cohort_id=1"),
        (lambda: cohort_auc([], [], []), r"empty \(0 rows\)"),
        (lambda: cohort_auc(np.zeros((2, 2)), [0.1] * 2, [1] * 2), r"must be 1-D"),
        (lambda: cohort_auc(None, [0.1], [1]), r"y_true is None"),
        (
            lambda: cohort_auc([0, 1], [0.1, 0.2], [1, 1], sample_weight=[1, -2]),
            r"sample_weight must be non-negative; 1 of 2 values are negative",
        ),
        (
            lambda: cohort_auc([0, 1], [0.1, 0.2], [1, 1], sample_weight=[1, float("inf")]),
            r"NaN or infinite",
        ),
        (
            lambda: cohort_auc([0, 1], [0.1, 0.2], [1, 1], sample_weight=pa.array([1.0, None])),
            r"sample_weight .* are missing",
        ),
        (
            lambda: cohort_auc([0, 1], [0.1, 0.2], [1, 1], sample_weight=[1, 2, 3]),
            r"sample_weight=3",
        ),
        (lambda: cohort_auc([0, 1], [0.1, 0.2], [[1], [2]]), r"must be hashable"),
        (lambda: cohort_auc([0, 1], [0.1, 0.2], [1, 1], nan="skip"), r"nan must be"),  # type: ignore[arg-type]
        (lambda: _inputs.labels([]), r"y_true is empty"),
        (lambda: _inputs.scores([0.1], 2), r"one value per row of y_true \(2 rows\); got 1"),
        (lambda: _inputs.cohorts(pa.array([1, 2, 3]), 2), r"got 3"),
        (lambda: _inputs.check_same_length(a=None), r"no columns"),
    ],
)
def test_bad_input_raises_usage_error_with_a_fix(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call()


def test_error_messages_never_echo_values() -> None:
    with pytest.raises(UsageError) as info:
        cohort_auc([0, 1, 7], [0.1, 0.2, 0.3], ["secret-tenant"] * 3)
    assert "7" not in str(info.value).replace("of 3", "")
    assert "secret" not in str(info.value)
