"""Prometheus HTTP API results (the decoded JSON `data.result`) -> numbers keyed by group.

Pure and strict about shape: anything that is not the documented vector or matrix form
raises `ResponseError`, which the client turns into None for the fields of that query.
A NaN or infinite value is None for its group (never 0); a NaN point of a range is left
out of the history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tierscale.domain.metrics import Histogram

Key = tuple[str, ...]
"""Values of an input's group labels (e.g. `(namespace, deployment)`), in its order."""


class ResponseError(ValueError):
    """The response is not the shape the query promised."""


def number(raw: object) -> float | None:
    """A sample value as Prometheus encodes it (a string, `NaN`, `+Inf`); None if not finite."""
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ResponseError(f"sample value {raw!r} is not a number")
    try:
        value = float(raw)
    except ValueError as error:
        raise ResponseError(f"sample value {raw!r} is not a number") from error
    return value if math.isfinite(value) else None


Row = tuple[Mapping[str, object], Mapping[str, object]]
"""(labels, the whole series object)."""


def _rows(result: object) -> list[Row]:
    if not isinstance(result, list):
        raise ResponseError(f"expected a list of series, got {type(result).__name__}")
    rows: list[Row] = []
    for row in result:
        metric = row.get("metric") if isinstance(row, Mapping) else None
        if not isinstance(metric, Mapping):
            raise ResponseError(f"series without a metric: {row!r:.200}")
        rows.append((metric, row))
    return rows


def _key(metric: Mapping[str, object], labels: Sequence[str]) -> Key:
    values = []
    for label in labels:
        value = metric.get(label)
        if not isinstance(value, str):
            raise ResponseError(f"series {dict(metric)!r:.200} lacks group label {label!r}")
        values.append(value)
    return tuple(values)


def _point(raw: object) -> tuple[float, float | None]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) != 2:
        raise ResponseError(f"sample {raw!r:.100} is not [timestamp, value]")
    at = raw[0]
    if not isinstance(at, int | float) or isinstance(at, bool) or not math.isfinite(at):
        raise ResponseError(f"sample timestamp {at!r} is not a number")
    return float(at), number(raw[1])


def instant_vector(result: object, labels: Sequence[str]) -> dict[Key, float | None]:
    """An instant vector grouped by `labels` (one row per group) -> value by group."""
    out: dict[Key, float | None] = {}
    for metric, row in _rows(result):
        key = _key(metric, labels)
        if key in out:
            raise ResponseError(f"two series for group {key}: the query must group by {labels}")
        out[key] = _point(row.get("value"))[1]
    return out


def matrix(result: object, labels: Sequence[str]) -> dict[Key, tuple[tuple[float, float], ...]]:
    """A range result grouped by `labels` -> (timestamp_s, value) points, oldest first."""
    out: dict[Key, tuple[tuple[float, float], ...]] = {}
    for metric, row in _rows(result):
        key = _key(metric, labels)
        if key in out:
            raise ResponseError(f"two series for group {key}: the query must group by {labels}")
        values = row.get("values")
        if not isinstance(values, list):
            raise ResponseError(f"range series {key} has no values list")
        points = [_point(raw) for raw in values]
        out[key] = tuple(sorted((at, v) for at, v in points if v is not None))
    return out


def histograms(result: object, labels: Sequence[str]) -> dict[Key, Histogram | None]:
    """Bucket increases grouped by `labels` + `le` -> one `Histogram` per group.

    The `+Inf` bucket is the count. A group without it, or with a NaN bucket, is None.
    Cumulative counts are made non-decreasing as `histogram_quantile` does: increases of
    separate bucket series are extrapolated separately and can cross by a fraction.
    """
    buckets_by_key: dict[Key, dict[float, float | None]] = {}
    for metric, row in _rows(result):
        key = _key(metric, labels)
        bound = _bound(metric.get("le"), key)
        buckets = buckets_by_key.setdefault(key, {})
        if bound in buckets:
            raise ResponseError(f"two series for bucket le={bound} of {key}")
        buckets[bound] = _point(row.get("value"))[1]
    return {key: _histogram(buckets) for key, buckets in buckets_by_key.items()}


def _bound(le_text: object, key: Key) -> float:
    if not isinstance(le_text, str):
        raise ResponseError(f"bucket series of {key} lacks the le label")
    try:
        bound = float(le_text)
    except ValueError as error:
        raise ResponseError(f"bucket bound le={le_text!r} of {key} is not a number") from error
    if math.isnan(bound) or bound == -math.inf:
        raise ResponseError(f"bucket bound le={le_text!r} of {key} is not a bound")
    return bound


def _histogram(buckets: Mapping[float, float | None]) -> Histogram | None:
    if math.inf not in buckets or any(v is None for v in buckets.values()):
        return None
    bounds = sorted(b for b in buckets if b != math.inf)
    cumulative: list[float] = []
    running = 0.0
    for bound in bounds:
        value = buckets[bound]
        assert value is not None
        running = max(running, value)
        cumulative.append(running)
    total = buckets[math.inf]
    assert total is not None
    return Histogram(tuple(bounds), tuple(cumulative), max(total, running))
