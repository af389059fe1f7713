"""Read measurements (the I/O edge of fitting): CSV step records or load sweeps,
`vllm bench serve --save-result` JSON files, saved Prometheus scrapes.

Every problem is reported as `file:line: column N ('name'): what was expected, got what`,
so a user can fix the file without reading code. The header decides the kind:
  steps: prefill_tokens, decode_seqs, context_tokens, step_s
  sweep: tpot_s and concurrency or rate_rps; optional prompt_tokens, output_tokens, ttft_s
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tierscale_predictor import requestfit
from tierscale_predictor.fit import StepRows, SweepRows
from tierscale_predictor.requestfit import LevelData

STEP_COLUMNS = ("prefill_tokens", "decode_seqs", "context_tokens", "step_s")
SWEEP_REQUIRED = ("tpot_s",)
SWEEP_LOAD = ("concurrency", "rate_rps")
SWEEP_OPTIONAL = ("prompt_tokens", "output_tokens", "ttft_s")
_INTEGER_COLUMNS = {"prefill_tokens", "decode_seqs", "context_tokens", "concurrency"}
_POSITIVE_COLUMNS = {
    "step_s",
    "tpot_s",
    "concurrency",
    "rate_rps",
    "prompt_tokens",
    "output_tokens",
    "ttft_s",
}


class CsvInputError(ValueError):
    """A measurement file is malformed; the message names file, line and column."""


@dataclass(frozen=True, slots=True)
class ProfileData:
    kind: str
    """'steps' or 'sweep'."""
    steps: StepRows | None
    sweep: SweepRows | None
    rows: int


def _parse(path: Path, line: int, col: int, name: str, text: str) -> float:
    where = f"{path}:{line}: column {col} ('{name}')"
    want = "an integer >= 0" if name in _INTEGER_COLUMNS else "a number"
    if name in _POSITIVE_COLUMNS:
        want = "an integer > 0" if name in _INTEGER_COLUMNS else "a number > 0"
    try:
        value = float(text)
    except ValueError:
        raise CsvInputError(f"{where}: expected {want}, got {text.strip()!r}") from None
    bad = not math.isfinite(value) or value < 0
    bad = bad or (name in _POSITIVE_COLUMNS and value <= 0)
    bad = bad or (name in _INTEGER_COLUMNS and not value.is_integer())
    if bad:
        raise CsvInputError(f"{where}: expected {want}, got {text.strip()!r}")
    return value


def _kind(path: Path, header: list[str]) -> str:
    names = set(header)
    if len(names) != len(header):
        raise CsvInputError(f"{path}:1: duplicate column names in header {header}")
    if set(STEP_COLUMNS) <= names:
        extra = names - set(STEP_COLUMNS)
        if extra:
            raise CsvInputError(
                f"{path}:1: unexpected column(s) {sorted(extra)} in a step-record file; "
                f"expected exactly {', '.join(STEP_COLUMNS)}"
            )
        return "steps"
    if "tpot_s" in names:
        if not names & set(SWEEP_LOAD):
            raise CsvInputError(
                f"{path}:1: a load sweep needs a 'concurrency' or 'rate_rps' column "
                f"besides 'tpot_s'; header is {header}"
            )
        allowed = set(SWEEP_REQUIRED) | set(SWEEP_LOAD) | set(SWEEP_OPTIONAL)
        extra = names - allowed
        if extra:
            raise CsvInputError(
                f"{path}:1: unexpected column(s) {sorted(extra)}; a load sweep has "
                f"{', '.join(SWEEP_REQUIRED + SWEEP_LOAD + SWEEP_OPTIONAL)}"
            )
        return "sweep"
    raise CsvInputError(
        f"{path}:1: header {header} is neither step records ({', '.join(STEP_COLUMNS)}) "
        f"nor a load sweep (concurrency or rate_rps, tpot_s[, prompt_tokens, output_tokens, "
        f"ttft_s])"
    )


def _parse_record(
    path: Path, line: int, header: list[str], record: list[str], columns: list[list[float]]
) -> None:
    both_loads = set(SWEEP_LOAD) <= set(header)
    for col, (name, cell) in enumerate(zip(header, record, strict=True), 1):
        if both_loads and name in SWEEP_LOAD and not cell.strip():
            columns[col - 1].append(math.nan)  # the row's load is the other one
            continue
        columns[col - 1].append(_parse(path, line, col, name, cell))
    if both_loads:
        given = [not math.isnan(columns[header.index(n)][-1]) for n in SWEEP_LOAD]
        if sum(given) != 1:
            raise CsvInputError(f"{path}:{line}: give exactly one of 'concurrency' and 'rate_rps'")


def read_profile_csv(path: Path) -> ProfileData:
    """Parse a measurement CSV; raises CsvInputError naming file, line and column."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise CsvInputError(f"{path}: cannot open: {err.strerror}") from err
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise CsvInputError(f"{path}: the file is empty; expected a header line") from None
        except csv.Error as err:
            raise CsvInputError(f"{path}:1: {err}") from err
        kind = _kind(path, header)
        columns: list[list[float]] = [[] for _ in header]
        try:
            for record in reader:
                line = reader.line_num
                if not record or all(not cell.strip() for cell in record):
                    continue
                if len(record) != len(header):
                    raise CsvInputError(
                        f"{path}:{line}: expected {len(header)} columns "
                        f"({', '.join(header)}), got {len(record)}"
                    )
                _parse_record(path, line, header, record, columns)
        except csv.Error as err:
            raise CsvInputError(f"{path}:{reader.line_num}: {err}") from err
    rows = len(columns[0])
    if rows == 0:
        raise CsvInputError(f"{path}: no data rows after the header")
    data = {
        name: np.asarray(values, dtype=float) for name, values in zip(header, columns, strict=True)
    }
    if kind == "steps":
        steps = StepRows(
            data["prefill_tokens"], data["decode_seqs"], data["context_tokens"], data["step_s"]
        )
        return ProfileData("steps", steps, None, rows)
    sweep = SweepRows(
        tpot_s=data["tpot_s"],
        concurrency=data.get("concurrency"),
        rate_rps=data.get("rate_rps"),
        prompt_tokens=data.get("prompt_tokens"),
        output_tokens=data.get("output_tokens"),
        ttft_s=data.get("ttft_s"),
    )
    return ProfileData("sweep", None, sweep, rows)


# ---- request-level inputs: `vllm bench serve` results, Prometheus scrapes ------------


def read_bench_results(paths: Sequence[Path]) -> list[LevelData]:
    """One load level per `vllm bench serve --save-result` JSON file (real field names:
    input_lens, output_lens, ttfts, itls, max_concurrency, request_rate)."""
    levels = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise CsvInputError(f"{path}: cannot read: {err.strerror}") from err
        except json.JSONDecodeError as err:
            raise CsvInputError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from err
        if not isinstance(data, dict):
            raise CsvInputError(f"{path}: expected a JSON object (vllm bench serve result)")
        try:
            levels.append(requestfit.level_from_bench_result(data, origin=str(path)))
        except (requestfit.RequestFitError, TypeError, ValueError) as err:
            raise CsvInputError(str(err) if str(path) in str(err) else f"{path}: {err}") from err
    return levels


def read_prometheus_scrapes(directory: Path) -> list[LevelData]:
    """Scrapes of one replica's /metrics saved as `<unix seconds>.prom`; each pair of
    consecutive scrapes is one rate level (deltas of vLLM's histograms)."""
    files = sorted(directory.glob("*.prom"), key=lambda p: float(p.stem))
    if len(files) < 2:
        raise CsvInputError(f"{directory}: need at least two <unix seconds>.prom scrapes")
    scrapes = [(float(p.stem), requestfit.parse_prometheus_text(p.read_text())) for p in files]
    levels = []
    for (t0, before), (t1, after) in zip(scrapes, scrapes[1:], strict=False):
        origin = f"{directory}/{t0:g}..{t1:g}"
        try:
            levels.append(requestfit.level_from_prometheus(before, after, t1 - t0, origin=origin))
        except requestfit.RequestFitError as err:
            raise CsvInputError(str(err)) from err
    return levels


def sweep_levels(sweep: SweepRows, *, origin: str) -> list[LevelData]:
    """CSV sweep rows as load levels (each row: means at one load and one request shape)."""
    if sweep.prompt_tokens is None or sweep.output_tokens is None:
        raise CsvInputError(
            f"{origin}: fitting TTFT needs 'prompt_tokens' and 'output_tokens' columns"
        )

    def load_of(i: int) -> tuple[str, float]:
        if sweep.concurrency is not None and not math.isnan(sweep.concurrency[i]):
            return "concurrency", float(sweep.concurrency[i])
        assert sweep.rate_rps is not None
        return "rate", float(sweep.rate_rps[i])

    return [
        LevelData(
            kind=load_of(i)[0],
            load=load_of(i)[1],
            prompt_tokens=float(sweep.prompt_tokens[i]),
            output_tokens=float(sweep.output_tokens[i]),
            ttft_s=None if sweep.ttft_s is None else float(sweep.ttft_s[i]),
            tpot_s=float(sweep.tpot_s[i]),
            source=f"{origin}:{i + 2}",
        )
        for i in range(len(sweep.tpot_s))
    ]
