"""Fit a LatencyModel's step coefficients from measurements.

Two sources, the two a team actually has:
  (a) step records (prefill tokens, decode sequences, context tokens, step seconds), as a
      profiler or the engine model logs them: step = c0 + a*prefill + b*decodes + k*context;
  (b) request-level load sweeps (`vllm bench serve` at several --max-concurrency values, or
      at several rates): TPOT at concurrency L with prompt P and output O is about
      c0 + a*L*P/O + b*L + k*L*(P + O/2) (see `latency.predict_at_concurrency`); a rate is
      turned into a concurrency by Little's law. With only `concurrency,tpot_s` the fit is
      c0 + b*L (a TPOT-versus-load line).
Both are non-negative least squares on physically derived features (scikit-learn's
`LinearRegression(positive=True)`, the intercept as a constrained column so c0 >= 0 too),
weighted to minimise relative error, with R^2 and MAPE on a seeded held-out split.
Pure: data in, model out; reading CSV files is `profilecsv`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_percentage_error, r2_score

from tierscale_predictor.latency import LatencyModel, Provenance

HOLDOUT_FRAC = 0.2
MIN_ROWS_FOR_HOLDOUT = 10
"""Below this many rows every row trains and the report says the scores are in-sample."""


class FitError(ValueError):
    """The data cannot determine the model (too few rows, no variation, bad values)."""


@dataclass(frozen=True, slots=True)
class StepRows:
    """Step-level records, one entry per engine step (numpy arrays of equal length)."""

    prefill_tokens: np.ndarray
    decode_seqs: np.ndarray
    context_tokens: np.ndarray
    step_s: np.ndarray
    attention_pairs: np.ndarray | None = None
    """(query, key) pairs of each step's prefill chunks, when the profiler logs them."""


@dataclass(frozen=True, slots=True)
class SweepRows:
    """Request-level load sweep rows. Absent columns are None."""

    tpot_s: np.ndarray
    concurrency: np.ndarray | None = None
    rate_rps: np.ndarray | None = None
    prompt_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    ttft_s: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class FitReport:
    """How well the fitted model explains the data (scores on held-out rows)."""

    kind: str
    """'steps' or 'sweep'."""
    target: str
    """What was regressed: 'step_s' or 'tpot_s'."""
    rows: int
    train_rows: int
    test_rows: int
    r2: float
    mape: float
    in_sample: bool
    """True when there were too few rows to hold any out."""
    coefficients: tuple[tuple[str, float], ...]
    decode_knee_seqs: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FitResult:
    model: LatencyModel
    report: FitReport


def _split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
    if n < MIN_ROWS_FOR_HOLDOUT:
        everything = np.arange(n)
        return everything, everything, True
    order = rng.permutation(n)
    n_test = max(1, int(round(n * HOLDOUT_FRAC)))
    return order[n_test:], order[:n_test], False


def _nnls(features: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative error (weights 1/y^2)."""
    reg = LinearRegression(positive=True, fit_intercept=False)
    reg.fit(features, y, sample_weight=1.0 / np.square(y))
    return np.asarray(reg.coef_, dtype=float)


def _scores(features: np.ndarray, y: np.ndarray, coef: np.ndarray) -> tuple[float, float]:
    pred = features @ coef
    r2 = float(r2_score(y, pred)) if len(y) > 1 else float("nan")
    return r2, float(mean_absolute_percentage_error(y, pred))


def _step_features(rows: StepRows, knee: int) -> np.ndarray:
    decodes = rows.decode_seqs.astype(float)
    cols = [np.ones_like(decodes), rows.prefill_tokens.astype(float)]
    if knee > 0:
        cols += [np.minimum(decodes, knee), np.maximum(decodes - knee, 0.0)]
    else:
        cols.append(decodes)
    cols.append(rows.context_tokens.astype(float))
    return np.column_stack(cols)


def _check_finite_positive(name: str, values: np.ndarray) -> None:
    if values.size == 0:
        raise FitError("no rows to fit")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise FitError(f"{name} must be finite and > 0 in every row")


def fit_steps(
    rows: StepRows,
    *,
    rng: np.random.Generator,
    base: LatencyModel | None = None,
    knee_candidates: Sequence[int] = (0,),
    source: str = "steps",
    fitted_at: str = "",
) -> FitResult:
    """Fit c0, a, b, k (and optionally a decode knee, picked on held-out error)."""
    y = np.asarray(rows.step_s, dtype=float)
    _check_finite_positive("step_s", y)
    n = len(y)
    train, test, in_sample = _split(n, rng)
    best: tuple[float, int, np.ndarray] | None = None
    for knee in knee_candidates:
        feats = _step_features(rows, knee)
        coef = _nnls(feats[train], y[train])
        mse = float(np.mean(np.square((feats[test] @ coef - y[test]) / y[test])))
        if best is None or mse < best[0] - 1e-15:
            best = (mse, knee, coef)
    assert best is not None
    _, knee, coef = best
    feats = _step_features(rows, knee)
    r2, mape = _scores(feats[test], y[test], coef)
    c0, a = float(coef[0]), float(coef[1])
    if c0 <= 0.0:
        raise FitError("fitted base_s is 0: the data has no step without work to anchor it")
    if knee > 0:
        b, b_hi, k = float(coef[2]), float(coef[3]), float(coef[4])
        names: tuple[str, ...] = (
            "base_s",
            "prefill_s_per_token",
            "decode_s_per_seq",
            "decode_s_per_seq_above_knee",
            "context_s_per_token",
        )
        values: tuple[float, ...] = (c0, a, b, b_hi, k)
    else:
        b, b_hi, k = float(coef[2]), 0.0, float(coef[3])
        names = ("base_s", "prefill_s_per_token", "decode_s_per_seq", "context_s_per_token")
        values = (c0, a, b, k)
    template = base if base is not None else LatencyModel(c0, a, b, k)
    model = replace(
        template,
        base_s=c0,
        prefill_s_per_token=a,
        decode_s_per_seq=b,
        context_s_per_token=k,
        decode_knee_seqs=knee,
        decode_s_per_seq_above_knee=b_hi,
        compute_s_per_token=0.0,
        compute_floor_s=0.0,
        attention_s_per_token_pair=0.0,
    )
    notes: tuple[str, ...] = ()
    if knee == 0:
        roof = _fit_roofline(rows, y, train, test, np.array([c0, a, b, k]))
        if roof is not None and roof[0] < best[0] * 0.99:
            x = roof[1]
            names = (*names, "attention_s_per_token_pair", "compute_s_per_token",
                     "compute_floor_s")  # fmt: skip
            values = tuple(float(v) for v in x)
            model = replace(
                model,
                base_s=values[0],
                prefill_s_per_token=values[1],
                decode_s_per_seq=values[2],
                context_s_per_token=values[3],
                attention_s_per_token_pair=values[4],
                compute_s_per_token=values[5],
                compute_floor_s=min(values[6], values[0]),
            )
            pred = _roofline_predict(rows, x)
            r2 = float(r2_score(y[test], pred[test])) if len(test) > 1 else float("nan")
            mape = float(mean_absolute_percentage_error(y[test], pred[test]))
            notes = ("the compute-bound line (roofline) lowers held-out error: kept",)
    model = replace(model, provenance=Provenance(source, fitted_at, n, r2, mape))
    report = FitReport(
        "steps",
        "step_s",
        n,
        len(train),
        len(test),
        r2,
        mape,
        in_sample,
        tuple(zip(names, values, strict=True)),
        knee,
        notes,
    )
    return FitResult(model, report)


def _roofline_predict(rows: StepRows, x: np.ndarray) -> np.ndarray:
    """step = c0 + k ctx + q pairs + max(a P + b B, c (P + B) - F), x = (c0,a,b,k,q,c,F)."""
    p = rows.prefill_tokens.astype(float)
    d = rows.decode_seqs.astype(float)
    pairs = rows.attention_pairs.astype(float) if rows.attention_pairs is not None else 0.0
    c0, a, b, k, q, c, floor = x
    memory = a * p + b * d
    compute = c * (p + d) - min(floor, c0)
    return np.asarray(
        c0 + k * rows.context_tokens.astype(float) + q * pairs + np.maximum(memory, compute)
    )


def _fit_roofline(
    rows: StepRows, y: np.ndarray, train: np.ndarray, test: np.ndarray, linear: np.ndarray
) -> tuple[float, np.ndarray] | None:
    """Bounded least squares of the roofline step model, started from the linear fit with
    the compute line through the largest steps; None if no step is large enough to tell."""
    tokens = (rows.prefill_tokens + rows.decode_seqs).astype(float)
    big = tokens >= max(256.0, float(np.quantile(tokens, 0.95)))
    if big.sum() < 5:
        return None
    c0, a, b, k = linear
    per_token = (y[big] - k * rows.context_tokens[big]) / tokens[big]
    x0 = np.array([c0, a, b, k, 0.0, max(float(np.median(per_token)), 1e-9), c0])
    has_pairs = rows.attention_pairs is not None and float(np.max(rows.attention_pairs)) > 0

    def residuals(x: np.ndarray) -> np.ndarray:
        z = x.copy()
        if not has_pairs:
            z[4] = 0.0
        return np.asarray(_roofline_predict(_take(rows, train), z) / y[train] - 1.0)

    upper = np.array([1.0, 1e-3, 1e-3, 1e-5, 1e-6, 1e-3, 1.0])
    fit = least_squares(residuals, np.minimum(x0, upper * 0.999), bounds=(0.0, upper))
    x = fit.x
    if not has_pairs:
        x[4] = 0.0
    x[6] = min(x[6], x[0])
    err = (_roofline_predict(rows, x)[test] - y[test]) / y[test]
    return float(np.mean(np.square(err))), x


def _take(rows: StepRows, idx: np.ndarray) -> StepRows:
    return StepRows(
        rows.prefill_tokens[idx],
        rows.decode_seqs[idx],
        rows.context_tokens[idx],
        rows.step_s[idx],
        None if rows.attention_pairs is None else rows.attention_pairs[idx],
    )


def _sweep_concurrency(rows: SweepRows) -> tuple[np.ndarray, tuple[str, ...]]:
    if rows.concurrency is not None:
        return rows.concurrency.astype(float), ()
    if rows.rate_rps is None:
        raise FitError("a load sweep needs a 'concurrency' or a 'rate_rps' column")
    # Little's law: requests in the system = rate * time in the system.
    outputs = rows.output_tokens if rows.output_tokens is not None else None
    if outputs is None:
        raise FitError("a rate sweep needs 'output_tokens' to turn rate into concurrency")
    in_system_s = (outputs - 1.0) * rows.tpot_s
    if rows.ttft_s is not None:
        in_system_s = in_system_s + rows.ttft_s
    note = "rates converted to concurrency by Little's law (rate x time in system)"
    return rows.rate_rps * in_system_s, (note,)


def fit_sweep(
    rows: SweepRows,
    *,
    rng: np.random.Generator,
    base: LatencyModel | None = None,
    source: str = "sweep",
    fitted_at: str = "",
) -> FitResult:
    """Fit TPOT versus load: c0 + a*L*P/O + b*L*(O-1)/O + k*(context tokens per step)."""
    y = np.asarray(rows.tpot_s, dtype=float)
    _check_finite_positive("tpot_s", y)
    conc, notes = _sweep_concurrency(rows)
    _check_finite_positive("concurrency", conc)
    n = len(y)
    if len(np.unique(conc)) < 2:
        raise FitError("the sweep needs at least two different loads to fit a slope")
    train, test, in_sample = _split(n, rng)
    have_lengths = rows.prompt_tokens is not None and rows.output_tokens is not None
    if have_lengths:
        assert rows.prompt_tokens is not None and rows.output_tokens is not None
        p = rows.prompt_tokens.astype(float)
        o = rows.output_tokens.astype(float)
        # Per step: L/O requests prefill P tokens, L(O-1)/O decode holding P + O/2 tokens
        # (the same accounting as latency.predict_at_concurrency).
        prefilling = conc / o
        decoding = conc * (o - 1.0) / o
        context = decoding * (p + o / 2.0) + prefilling * p
        feats = np.column_stack([np.ones(n), prefilling * p, decoding, context])
        names: tuple[str, ...] = (
            "base_s",
            "prefill_s_per_token",
            "decode_s_per_seq",
            "context_s_per_token",
        )
    else:
        feats = np.column_stack([np.ones(n), conc])
        names = ("base_s", "decode_s_per_seq")
        notes = (*notes, "no prompt/output columns: the load slope is put on decode_s_per_seq")
    coef = _nnls(feats[train], y[train])
    r2, mape = _scores(feats[test], y[test], coef)
    if coef[0] <= 0.0:
        raise FitError("fitted base_s is 0: TPOT at low load must be measured")
    full = dict(zip(names, (float(c) for c in coef), strict=True))
    template = base if base is not None else LatencyModel(full["base_s"], 0.0, 0.0, 0.0)
    model = replace(
        template,
        base_s=full["base_s"],
        prefill_s_per_token=full.get("prefill_s_per_token", 0.0),
        decode_s_per_seq=full.get("decode_s_per_seq", 0.0),
        context_s_per_token=full.get("context_s_per_token", 0.0),
        decode_knee_seqs=0,
        decode_s_per_seq_above_knee=0.0,
        provenance=Provenance(source, fitted_at, n, r2, mape),
    )
    report = FitReport(
        "sweep",
        "tpot_s",
        n,
        len(train),
        len(test),
        r2,
        mape,
        in_sample,
        tuple(full.items()),
        0,
        notes,
    )
    return FitResult(model, report)
