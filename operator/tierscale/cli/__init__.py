"""`tierscale` command line: one subcommand per module in this package.

Each subcommand module exposes `register(subparsers)`, which adds its parser and sets
`func(args) -> int` as the handler. Exit codes: 0 ok, 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

SUBCOMMANDS = (
    "tierscale.cli.crds",
    "tierscale.cli.chart",
    "tierscale.cli.profiles",
    "tierscale.cli.fit",
    "tierscale.cli.predict",
    "tierscale.cli.calibrate",
    "tierscale.cli.plan",
    "tierscale.cli.replay",
    "tierscale.cli.backtest",
    "tierscale.cli.rules",
    "tierscale.cli.run",
    "tierscale_sim.bench_cli",
)
"""Modules that provide a subcommand, in help order. `bench` comes from the fleet
simulator's own distribution (`tierscale-sim`); without it the subcommand is absent."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tierscale",
        description="SLO-tiered autoscaling and spillover routing for vLLM inference pools.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"tierscale {importlib.metadata.version('tierscale')}",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not name.startswith(err.name):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
