"""Envoy adapter: a `RoutingTable` becomes validated LDS/CDS/RDS files Envoy reloads live.

Modules: `routing` (the typed table), `plan_routing` (Plan -> table), `xds` (table -> Envoy
resources and bootstrap), `validation` (`envoy --mode validate`), `file_writer` and
`configmap_writer` (the two places a table is published), `fake` (in-memory writer).
"""
