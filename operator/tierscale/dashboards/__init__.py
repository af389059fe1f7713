"""tierscale's Grafana dashboards: what they show (`spec`) and their JSON (`grafana`).

`spec` is plain data built from the operator's metric-name constants; `grafana` needs the
grafana-foundation-sdk (extra `dashboards`, part of `dev`) and is imported only by the
`tierscale dashboards` command.
"""
