"""Read measurement CSVs (the I/O edge of fitting): step records or load sweeps.

Every problem is reported as `file:line: column N ('name'): what was expected, got what`,
so a user can fix the file without reading code. The header decides the kind:
  steps: prefill_tokens, decode_seqs, context_tokens, step_s
  sweep: tpot_s and concurrency or rate_rps; optional prompt_tokens, output_tokens, ttft_s
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tierscale_predictor.fit import StepRows, SweepRows

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
                for col, (name, cell) in enumerate(zip(header, record, strict=True), 1):
                    columns[col - 1].append(_parse(path, line, col, name, cell))
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
