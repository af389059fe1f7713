"""`bench/plan_latency.py`: `--out` rewrites only its measured block of the page; `--digest`
hashes every plan it times."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from bench.plan_latency import BEGIN, END, measure, write_block
from tierscale_predictor import latency, profiles


def test_a_new_page_is_the_block(tmp_path: Path) -> None:
    page = tmp_path / "latency.md"
    write_block(page, "| table |")
    assert page.read_text() == f"{BEGIN}\n| table |\n{END}\n"


def test_the_notes_around_the_block_are_kept(tmp_path: Path) -> None:
    page = tmp_path / "latency.md"
    page.write_text(f"intro\n{BEGIN}\nold table\n{END}\n\nnotes written by hand\n")
    write_block(page, "new table")
    assert page.read_text() == f"intro\n{BEGIN}\nnew table\n{END}\n\nnotes written by hand\n"


def test_a_page_without_the_block_is_refused_not_overwritten(tmp_path: Path) -> None:
    page = tmp_path / "latency.md"
    page.write_text("notes written by hand\n")
    with pytest.raises(SystemExit, match="not overwriting"):
        write_block(page, "table")
    assert page.read_text() == "notes written by hand\n"


def test_the_shipped_page_has_the_block() -> None:
    text = (Path(__file__).parents[2] / "docs" / "plan-latency.md").read_text()
    assert text.index(BEGIN) < text.index(END)


def test_the_digest_covers_every_plan_and_repeats_exactly() -> None:
    """`--digest` is how a speed change shows it changed no decision: the same run gives
    the same digest, and a run that made other plans (one more) gives another."""
    model = latency.LatencyModel.from_profile(profiles.load_profile("llama-3.1-8b-h100"))
    digests = []
    for repeats in (3, 3, 4):
        digest = hashlib.sha256()
        served, limited = measure(2, repeats, model, time.process_time, digest)
        assert len(served) + len(limited) == repeats
        digests.append(digest.hexdigest())
    assert digests[0] == digests[1] != digests[2]
