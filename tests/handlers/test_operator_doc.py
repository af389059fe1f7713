"""docs/operator.md lists exactly the settings `tierscale run` has."""

from __future__ import annotations

from pathlib import Path

from tierscale.cli.run import with_settings_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "operator.md"


def test_the_settings_table_matches_the_settings() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert with_settings_table(text) == text, (
        "docs/operator.md drifted: run `python -m tierscale.cli.run docs/operator.md`"
    )
