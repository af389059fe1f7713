"""Every dashboard query names only series the operator exports (or Prometheus derives from
them), and the committed JSON carries exactly the spec's queries."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tierscale.dashboards import spec
from tierscale.loop import telemetry

CHART = Path(__file__).resolve().parents[2] / "charts" / "tierscale"
NAME = re.compile(r"\btierscale_[a-z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _exported() -> set[str]:
    return {v for k, v in vars(telemetry).items() if k.isupper() and isinstance(v, str)}


def _base(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in _exported():
            return name[: -len(suffix)]
    return name


def test_queries_name_only_exported_series() -> None:
    exported = _exported()
    for dashboard in spec.DASHBOARDS:
        for panel in dashboard.panels:
            for query in panel.queries:
                names = {_base(n) for n in NAME.findall(query.expr)}
                assert names, (dashboard.uid, panel.title)
                assert names <= exported, (panel.title, names - exported)


def test_three_dashboards_with_distinct_uids_and_titles() -> None:
    assert len({d.uid for d in spec.DASHBOARDS}) == 3
    assert (
        len({p.title for d in spec.DASHBOARDS for p in d.panels})
        == sum(len(d.panels) for d in spec.DASHBOARDS) - 1
    )  # "Tiers held" is on the fleet overview (stat) and planner health (graph)


def test_committed_json_has_the_spec_queries_and_the_datasource_variable() -> None:
    for dashboard in spec.DASHBOARDS:
        doc = json.loads((CHART / "dashboards" / dashboard.file_name).read_text())
        assert doc["uid"] == dashboard.uid
        exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
        assert exprs == [q.expr for p in dashboard.panels for q in p.queries]
        names = [v["name"] for v in doc["templating"]["list"]]
        assert names == ["datasource", "namespace", "model", "tier"]
        assert all(p["datasource"]["uid"] == "${datasource}" for p in doc["panels"])
