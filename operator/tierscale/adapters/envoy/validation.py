"""Ask the real Envoy binary whether a config is acceptable before anyone serves it.

`envoy --mode validate` only checks the bootstrap and never opens xDS files, so the
resources are inlined into a static bootstrap first (see `xds.render_validation_bootstrap`).
It runs the same parser and the same `validate_clusters` check as the live server.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import yaml

from tierscale.adapters.envoy import xds

DEFAULT_TIMEOUT_S = 30.0


class EnvoyConfigRejected(ValueError):
    """Envoy refused the config; `reason` is Envoy's own error line."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Envoy rejected the config: {reason}")
        self.reason = reason


def validate(
    resources: xds.XdsResources,
    envoy_binary: str = "envoy",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Raise `EnvoyConfigRejected` unless Envoy accepts `resources`."""
    bootstrap = xds.render_validation_bootstrap(resources)
    with tempfile.TemporaryDirectory(prefix="tierscale-envoy-validate-") as tmp:
        path = Path(tmp) / "bootstrap.yaml"
        path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        result = subprocess.run(
            [
                envoy_binary,
                "--mode",
                "validate",
                "--disable-hot-restart",
                "--log-level",
                "error",
                "-c",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if result.returncode != 0:
        raise EnvoyConfigRejected(_reason(result.stderr + result.stdout))


_MARKERS = ("Proto constraint validation failed", "error initializing configuration")


def _reason(output: str, max_chars: int = 600) -> str:
    """The informative tail of Envoy's error, on one line.

    Envoy prints the offending proto in text form between its error line and the actual
    constraint that failed; the constraint is what a person needs, so it is preferred.
    """
    for marker in _MARKERS:
        start = output.find(marker)
        if start >= 0:
            return " ".join(output[start:].split())[:max_chars]
    tail = " ".join(output.split())
    return tail[-max_chars:] or "envoy exited non-zero without output"
