"""Dashboard specs (`spec.py`) -> Grafana dashboard JSON, with grafana-foundation-sdk.

The SDK is a development dependency (extra `dashboards`): the operator never imports
this module; `tierscale dashboards` does, to write or drift-check the JSON the Helm chart
ships (`charts/tierscale/dashboards/`).
"""

from __future__ import annotations

import json
from typing import Any, Final

from grafana_foundation_sdk.builders import bargauge, common, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as gdash
from grafana_foundation_sdk.builders import prometheus as gprom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models

from tierscale.dashboards import spec
from tierscale.loop import telemetry

DATASOURCE: Final = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
GRID_COLUMNS: Final = 24
TAGS: Final = ["tierscale"]
VARIABLE_SERIES: Final = telemetry.DESIRED_REPLICAS
"""Series the template variables list their values from (every managed tier has it)."""


def _variables() -> list[Any]:
    source = (
        gdash.DatasourceVariable("datasource")
        .label("Prometheus")
        .type("prometheus")
        .hide(models.VariableHide.DONT_HIDE)
    )
    out: list[Any] = [source]
    chain = [
        ("namespace", "Namespace", VARIABLE_SERIES),
        ("model", "Model", f'{VARIABLE_SERIES}{{namespace=~"$namespace"}}'),
        ("tier", "Tier", f'{VARIABLE_SERIES}{{namespace=~"$namespace", model=~"$model"}}'),
    ]
    for name, label, series in chain:
        out.append(
            gdash.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(f"label_values({series}, {name})")
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .sort(models.VariableSort.ALPHABETICAL_ASC)
        )
    return out


def _target(query: spec.Query, ref_id: str) -> gprom.Dataquery:
    target = (
        gprom.Dataquery()
        .expr(query.expr)
        .legend_format(query.legend)
        .ref_id(ref_id)
        .datasource(DATASOURCE)
    )
    return target.instant() if query.instant else target.range()


def _panel(p: spec.Panel) -> Any:
    builder: Any
    if p.kind == "stat":
        builder = stat.Panel().reduce_options(
            common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
        )
    elif p.kind == "table":
        builder = table.Panel()
    elif p.kind == "bargauge":
        builder = bargauge.Panel().reduce_options(
            common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
        )
    else:
        builder = timeseries.Panel().fill_opacity(10 if not p.stacked else 40).line_width(1)
        if p.stacked:
            builder = builder.stacking(
                common.StackingConfig().mode(common_models.StackingMode.NORMAL)
            )
    builder = (
        builder.title(p.title)
        .description(p.description)
        .datasource(DATASOURCE)
        .unit(p.unit)
        .span(p.width)
        .height(p.height)
    )
    if p.min_value is not None:
        builder = builder.min(p.min_value)
    if p.max_value is not None:
        builder = builder.max(p.max_value)
    for index, query in enumerate(p.queries):
        builder = builder.with_target(_target(query, chr(ord("A") + index)))
    return builder


def build(d: spec.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a dict, key order fixed)."""
    builder = (
        gdash.Dashboard(d.title)
        .uid(d.uid)
        .description(d.description)
        .tags(TAGS)
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
    )
    for variable in _variables():
        builder = builder.with_variable(variable)
    for p in d.panels:
        builder = builder.with_panel(_panel(p))
    encoded: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return encoded


def render(d: spec.Dashboard) -> str:
    """`build` as the text committed to the chart (stable: sorted keys, 2-space indent)."""
    return json.dumps(build(d), indent=2, sort_keys=True) + "\n"


def rendered_files() -> dict[str, str]:
    """file name -> JSON text, for every dashboard."""
    return {d.file_name: render(d) for d in spec.DASHBOARDS}
