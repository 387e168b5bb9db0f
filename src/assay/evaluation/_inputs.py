"""Input coercion and validation shared by the evaluation functions.

Every public function of :mod:`assay.evaluation` takes plain columns: Python lists, numpy arrays,
pandas Series, polars Series or pyarrow Arrays / ChunkedArrays. The helpers here turn them into
numpy arrays and raise :class:`assay._errors.UsageError` with a message that says what was
expected, what came (counts and first positions only, never data values) and how to fix it.

pandas and polars are never imported here: a column is recognised as one of theirs only when the
library is already loaded (``sys.modules``), which it must be for the caller to hold such an object.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import UsageError

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: How many offending positions an error message lists.
_MAX_POSITIONS = 5
#: Integer cohort ids whose range is at most this many times the row count are coded with a
#: bincount lookup table (linear time) instead of a hash or a sort.
_DENSE_RANGE_FACTOR = 4


def _positions(mask: BoolArray, what: str) -> str:
    """Describe where ``mask`` is true: the count and the first few positions."""
    where = np.flatnonzero(mask)
    first = ", ".join(str(int(i)) for i in where[:_MAX_POSITIONS])
    more = ", ..." if where.size > _MAX_POSITIONS else ""
    return f"{where.size} of {mask.size} values {what} (first at positions [{first}{more}])"


def _is_pandas(x: object) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(x, pd.Series | pd.Index | pd.api.extensions.ExtensionArray)


def _is_polars(x: object) -> bool:
    pl = sys.modules.get("polars")
    return pl is not None and isinstance(x, pl.Series)


def as_column(x: object, name: str) -> tuple[np.ndarray[Any, Any], BoolArray | None]:
    """Return ``x`` as a 1-D numpy array and its null mask (``None`` when there are no nulls).

    Nulls are pyarrow / polars nulls, pandas missing values and ``None``; a float NaN is left in
    the values (the caller decides what NaN means) and is not counted as a null here.
    """
    if x is None:
        raise UsageError(f"{name} is None; pass a 1-D column of values (list, numpy, pandas, ...)")
    nulls: BoolArray | None = None
    values: np.ndarray[Any, Any]
    if isinstance(x, pa.Array | pa.ChunkedArray):
        if x.null_count:
            nulls = np.asarray(x.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if pa.types.is_dictionary(x.type):
            x = x.cast(x.type.value_type)
        values = np.asarray(x.to_numpy(zero_copy_only=False))  # type: ignore[attr-defined]
    elif _is_polars(x):
        s: Any = x
        if s.null_count():
            nulls = np.asarray(s.is_null().to_numpy(), dtype=bool)
        values = np.asarray(s.to_numpy())
    elif _is_pandas(x):
        p: Any = x
        pd: Any = sys.modules["pandas"]
        isna = np.asarray(pd.isna(p), dtype=bool)
        kind = getattr(p.dtype, "kind", "O")
        if kind not in "fc" and isna.any():
            nulls = isna
        if isna.any() and kind in "iuf" and not isinstance(p.dtype, np.dtype):
            # A nullable extension dtype (Int64, Float64, ...) with missing values.
            values = np.asarray(p.to_numpy(dtype="float64", na_value=np.nan))
        else:
            values = np.asarray(p.to_numpy() if hasattr(p, "to_numpy") else p)
    else:
        try:
            values = np.asarray(x)
        except (ValueError, TypeError) as exc:  # ragged nested lists, for instance
            raise UsageError(
                f"{name} must be a 1-D column of values; it could not be read as an array "
                f"({type(exc).__name__}); pass a list, numpy array, pandas/polars Series or "
                "pyarrow Array"
            ) from None
        if values.dtype == object and values.ndim == 1:
            # A float NaN inside an object array is left to the caller, like a numeric NaN.
            is_none = np.fromiter((v is None for v in values), dtype=bool, count=values.size)
            if is_none.any():
                nulls = is_none
    if values.ndim != 1:
        raise UsageError(
            f"{name} must be 1-D; got an array of shape {values.shape}; pass one column "
            "(use .ravel() or select a single column)"
        )
    return values, nulls


def _check_length(values: np.ndarray[Any, Any], n: int, name: str) -> None:
    if values.size != n:
        raise UsageError(
            f"{name} must have one value per row of y_true ({n} rows); got {values.size}; "
            "pass columns of the same length"
        )


def check_same_length(**arrays: object) -> int:
    """Check that all given columns have the same, non-zero length and return it.

    ``None`` values (an omitted ``sample_weight``, say) are skipped.

    Examples
    --------
    >>> check_same_length(y_true=[0, 1], y_score=[0.2, 0.9])
    2
    """
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}  # type: ignore[arg-type]
    if not lengths:
        raise UsageError("no columns were given; pass y_true and y_score")
    if len(set(lengths.values())) > 1:
        got = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise UsageError(
            f"{', '.join(lengths)} must have the same length; got {got}; "
            "pass columns of the same length (one value per row)"
        )
    n = next(iter(lengths.values()))
    if n == 0:
        raise UsageError(
            f"{', '.join(lengths)} are empty (0 rows); pass at least one row to evaluate"
        )
    return n


def as_float(values: np.ndarray[Any, Any], name: str, what: str) -> FloatArray:
    """Convert to float64, raising for strings, dates and other non-numeric values."""
    kind = values.dtype.kind
    if kind in "biuf":
        return np.asarray(values, dtype=np.float64)
    if kind == "O":
        bad = np.fromiter(
            (
                not isinstance(v, bool | int | float | np.bool_ | np.integer | np.floating)
                and v is not None
                for v in values
            ),
            dtype=bool,
            count=values.size,
        )
        if not bad.any():
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        raise UsageError(
            f"{name} must hold {what}; {_positions(bad, 'are not numbers')}; "
            "convert the column to a numeric type first"
        )
    raise UsageError(
        f"{name} must hold {what}; got a column of dtype {values.dtype}; "
        "convert the column to a numeric type first"
    )


def labels(y_true: object, name: str = "y_true") -> BoolArray:
    """Return binary labels as a boolean array.

    Accepts 0/1 integers or floats and booleans; anything else (2, -1, 0.5, NaN, null, text)
    raises :class:`~assay._errors.UsageError`, as does an empty column.

    Examples
    --------
    >>> labels([0, 1, 1.0, True]).tolist()
    [False, True, True, True]
    """
    values, nulls = as_column(y_true, name)
    if values.size == 0:
        raise UsageError(f"{name} is empty (0 rows); pass at least one row to evaluate")
    if nulls is not None:
        raise UsageError(
            f"{name} must be 0/1 or booleans; {_positions(nulls, 'are missing')}; "
            "drop those rows or fill the labels"
        )
    if values.dtype.kind == "b":
        return np.asarray(values, dtype=bool)
    numeric = as_float(values, name, "0/1 labels or booleans")
    bad = (numeric != 0) & (numeric != 1)
    if bad.any():
        raise UsageError(
            f"{name} must be 0/1 or booleans; {_positions(bad, 'are outside {0, 1}')}; "
            "binarise the labels first (e.g. y_true == positive_class)"
        )
    return np.asarray(numeric == 1, dtype=bool)


def finite_mask(y_score: object) -> BoolArray:
    """Return a boolean mask of the rows whose score is finite (not NaN, not infinite, not null).

    Functions that offer ``nan="drop"`` keep only these rows.

    Examples
    --------
    >>> finite_mask([0.1, float("nan"), float("inf"), 0.7]).tolist()
    [True, False, False, True]
    """
    values, nulls = as_column(y_score, "y_score")
    numeric = as_float(values, "y_score", "numbers")
    mask = np.isfinite(numeric)
    if nulls is not None:
        mask &= ~nulls
    return mask


def scores(
    y_score: object,
    n: int,
    *,
    name: str = "y_score",
    nan: Literal["raise", "drop"] = "raise",
) -> FloatArray:
    """Return scores as float64, checking the length against ``n``.

    With ``nan="raise"`` (the default) NaN, infinite or missing scores raise
    :class:`~assay._errors.UsageError` naming how many and where. With ``nan="drop"`` they are
    returned as NaN and the caller drops them with :func:`finite_mask`.

    Examples
    --------
    >>> scores([0.2, 1, True], 3).tolist()
    [0.2, 1.0, 1.0]
    """
    if nan not in ("raise", "drop"):
        raise UsageError(f"nan must be 'raise' or 'drop'; got {nan!r}")
    values, nulls = as_column(y_score, name)
    _check_length(values, n, name)
    out = as_float(values, name, "numbers")
    if nulls is not None:
        out = out.copy()
        out[nulls] = np.nan
    if nan == "raise":
        bad = ~np.isfinite(out)
        if bad.any():
            raise UsageError(
                f"{name} must be finite numbers; "
                f"{_positions(bad, 'are NaN, infinite or missing')}; "
                "fix or drop those rows (or pass nan='drop' to drop them)"
            )
    return out


def weights(sample_weight: object, n: int) -> FloatArray | None:
    """Return sample weights as float64 (``None`` stays ``None``).

    Weights must be finite and non-negative; zero weights are allowed.

    Examples
    --------
    >>> weights([1, 0.5, 0], 3).tolist()
    [1.0, 0.5, 0.0]
    >>> weights(None, 3) is None
    True
    """
    if sample_weight is None:
        return None
    name = "sample_weight"
    values, nulls = as_column(sample_weight, name)
    _check_length(values, n, name)
    if nulls is not None:
        raise UsageError(
            f"{name} must be finite non-negative numbers; {_positions(nulls, 'are missing')}; "
            "fill them (e.g. with 1.0) or drop those rows"
        )
    out = as_float(values, name, "finite non-negative numbers")
    bad = ~np.isfinite(out)
    if bad.any():
        raise UsageError(
            f"{name} must be finite non-negative numbers; "
            f"{_positions(bad, 'are NaN or infinite')}; "
            "fix or drop those rows"
        )
    neg = out < 0
    if neg.any():
        raise UsageError(
            f"{name} must be non-negative; {_positions(neg, 'are negative')}; "
            "weights count how much each row matters, so use 0 to ignore a row"
        )
    return out


# --- cohorts ---------------------------------------------------------------------------------


def _codes_from_dictionary(indices: IntArray, dictionary: pa.Array) -> tuple[IntArray, list[Any]]:
    """Compact and sort a dictionary encoding; ``indices`` uses -1 for null."""
    size = len(dictionary)
    if dictionary.null_count:
        # A null inside the dictionary is a null cohort too.
        dict_null = np.asarray(dictionary.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        lut_null = np.where(dict_null, -1, np.arange(size))
        indices = np.where(indices >= 0, lut_null[np.maximum(indices, 0)], -1)
    valid = indices >= 0
    used = np.flatnonzero(np.bincount(indices[valid], minlength=size) > 0)
    present = dictionary.take(pa.array(used, type=pa.int64()))
    try:
        order = np.asarray(pc.array_sort_indices(present).to_numpy(), dtype=np.int64)
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid):
        order = np.arange(len(present), dtype=np.int64)  # not sortable: first appearance
    lut = np.full(size, -1, dtype=np.int64)
    lut[used[order]] = np.arange(used.size, dtype=np.int64)
    values: list[Any] = present.take(pa.array(order, type=pa.int64())).to_pylist()
    codes = lut[np.maximum(indices, 0)]
    if not valid.all():
        codes[~valid] = len(values)
        values.append(None)
    return codes, values


def _codes_from_arrow(arr: pa.Array | pa.ChunkedArray) -> tuple[IntArray, list[Any]]:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.unify_dictionaries() if pa.types.is_dictionary(arr.type) else arr
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    indices = np.asarray(arr.indices.cast(pa.int64()).fill_null(-1).to_numpy(), dtype=np.int64)
    return _codes_from_dictionary(indices, arr.dictionary)


def _codes_dense_int(values: np.ndarray[Any, Any]) -> tuple[IntArray, list[Any]] | None:
    """Code integer ids with a lookup table when their range is small (linear time)."""
    lo, hi = int(values.min()), int(values.max())
    span = hi - lo + 1
    if span > _DENSE_RANGE_FACTOR * values.size + 1024:
        return None
    shifted = (values - lo) if lo else values
    present = np.bincount(shifted, minlength=span) > 0
    lut = np.cumsum(present, dtype=np.int64) - 1
    codes = lut[shifted]
    distinct = np.flatnonzero(present) + lo
    return np.asarray(codes, dtype=np.int64), distinct.tolist()


def _codes_python(values: np.ndarray[Any, Any], nulls: BoolArray) -> tuple[IntArray, list[Any]]:
    """Fallback for mixed or unhashable-by-Arrow values (tuples, mixed types): a dict."""
    index: dict[Any, int] = {}
    raw = np.empty(len(values), dtype=np.int64)
    for i, (v, is_null) in enumerate(zip(values, nulls, strict=True)):
        if is_null:
            raw[i] = -1
            continue
        try:
            raw[i] = index.setdefault(v, len(index))
        except TypeError:
            raise UsageError(
                f"cohort_id values must be hashable; the value at position {i} is of type "
                f"{type(v).__name__}; convert cohorts to strings or tuples"
            ) from None
    distinct = list(index)
    try:
        order = sorted(range(len(distinct)), key=lambda j: distinct[j])
    except TypeError:
        order = list(range(len(distinct)))  # not sortable: first appearance
    lut = np.empty(len(distinct), dtype=np.int64)
    lut[np.asarray(order, dtype=np.int64)] = np.arange(len(distinct), dtype=np.int64)
    codes = lut[np.maximum(raw, 0)] if distinct else np.zeros(len(values), dtype=np.int64)
    out_values = [distinct[j] for j in order]
    if (raw < 0).any():
        codes[raw < 0] = len(out_values)
        out_values.append(None)
    return codes, out_values


def cohorts(cohort_id: object, n: int, name: str = "cohort_id") -> tuple[IntArray, list[Any]]:
    """Code cohort ids as integers ``0..k-1``.

    Returns ``(codes, values)`` with ``values[codes[i]]`` the cohort of row ``i``. Codes follow
    the sorted order of the distinct values when they can be sorted, else their first appearance.
    A null cohort (``None``, NaN, a pandas / polars / Arrow null) is its own group, last, with
    value ``None``.

    Examples
    --------
    >>> codes, values = cohorts(["b", "a", None, "b"], 4)
    >>> codes.tolist(), values
    ([1, 0, 2, 1], ['a', 'b', None])
    """
    if isinstance(cohort_id, pa.Array | pa.ChunkedArray):
        if len(cohort_id) != n:
            _check_length(np.empty(len(cohort_id)), n, name)
        if pa.types.is_integer(cohort_id.type) and not cohort_id.null_count:
            values, _ = as_column(cohort_id, name)
            dense = _codes_dense_int(values)
            if dense is not None:
                return dense
        return _codes_from_arrow(cohort_id)
    if _is_polars(cohort_id):
        s: Any = cohort_id
        if s.dtype.is_integer() and not s.null_count():
            _check_length(np.empty(len(s)), n, name)
            return cohorts(s.to_numpy(), n, name)
        return cohorts(s.to_arrow(), n, name)
    if _is_pandas(cohort_id) and not isinstance(getattr(cohort_id, "dtype", None), np.dtype):
        # Categorical and nullable extension dtypes keep their type (and codes) through Arrow.
        _check_length(np.empty(len(cohort_id)), n, name)  # type: ignore[arg-type]
        try:
            return _codes_from_arrow(pa.array(cohort_id, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    if isinstance(cohort_id, list | tuple):
        # Build an object array element by element so that tuple cohorts stay one value each.
        cohort_id = np.fromiter(cohort_id, dtype=object, count=len(cohort_id))
    values, nulls = as_column(cohort_id, name)
    _check_length(values, n, name)
    kind = values.dtype.kind
    if kind == "b":
        codes, distinct = _codes_dense_int(values.astype(np.int64)) or ([], [])
        return np.asarray(codes, dtype=np.int64), [bool(v) for v in distinct]
    if kind in "iu" and values.size:
        dense = _codes_dense_int(values)
        if dense is not None:
            return dense
    if kind == "f":
        nulls = np.isnan(values) if nulls is None else nulls | np.isnan(values)
    if nulls is None:
        nulls = np.zeros(values.size, dtype=bool)
    if kind == "O" or kind == "f":
        try:
            arr = pa.array(values, mask=nulls, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return _codes_python(values, nulls)
    else:
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return _codes_python(values, nulls)
    try:
        return _codes_from_arrow(arr)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return _codes_python(values, nulls)
