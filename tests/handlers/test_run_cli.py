"""`tierscale run --help` documents every setting; a bad setting is refused with its name."""

from __future__ import annotations

import pytest

from tierscale.cli import build_parser, main
from tierscale.settings import Settings


def test_help_lists_every_setting_with_its_variable_and_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, info in Settings.model_fields.items():
        assert f"--{name.replace('_', '-')}" in text, name
        assert f"TIERSCALE_{name.upper()}" in text, name
        assert info.description, f"setting {name} has no docstring"
    assert "[env TIERSCALE_CONTROL_INTERVAL_S; default: 15.0]" in text


def test_options_win_over_the_environment_and_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TIERSCALE_CONTROL_INTERVAL_S", "-1")
    assert main(["run"]) == 2
    assert "TIERSCALE_CONTROL_INTERVAL_S" in capsys.readouterr().err
    args = build_parser().parse_args(["run", "--control-interval-s", "2", "--dry-run"])
    assert (args.control_interval_s, args.dry_run) == (2.0, True)
    assert not hasattr(build_parser().parse_args(["run"]), "control_interval_s"), (
        "an option not given leaves the environment's value"
    )
