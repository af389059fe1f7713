"""The recording rules and the rendered Prometheus config pass Prometheus' own checks.

No processes beyond promtool: these run in a second and catch a broken rule before any
e2e test waits 30 s for a series that can never appear.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from tierscale_testbed import prometheus

RULES_DIR = prometheus.RULES_FILE.parent


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if not prometheus.PROMTOOL_BINARY.exists():
        pytest.fail(f"{prometheus.PROMTOOL_BINARY} missing; {prometheus.INSTALL_HINT}")
    return subprocess.run(
        [str(prometheus.PROMTOOL_BINARY), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_recording_rules_are_valid() -> None:
    done = _promtool("check", "rules", str(prometheus.RULES_FILE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_recording_rules_compute_what_the_operator_expects() -> None:
    done = _promtool("test", "rules", "rules_test.yml", cwd=RULES_DIR)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_expectation_fails_the_rule_test(tmp_path: Path) -> None:
    """Guards the guard: promtool really compares values."""
    spec = yaml.safe_load((RULES_DIR / "rules_test.yml").read_text())
    spec["rule_files"] = [str(prometheus.RULES_FILE)]
    spec["tests"][0]["promql_expr_test"][0]["exp_samples"][0]["value"] = 0.5
    (tmp_path / "wrong.yml").write_text(yaml.safe_dump(spec))
    done = _promtool("test", "rules", "wrong.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert "tierscale:pool_ttft_seconds_bucket:increase10s" in done.stdout + done.stderr


def test_rendered_config_is_valid(tmp_path: Path) -> None:
    config = prometheus.render_config(
        tmp_path / "file_sd.json", "127.0.0.1:9901", tmp_path / "operator.json"
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = _promtool("check", "config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert config["global"]["scrape_interval"] == "1s"
    assert {job["job_name"] for job in config["scrape_configs"]} == {
        "vllm",
        "envoy",
        "tierscale-operator",
    }
