"""Envoy adapter: routing intents become validated LDS/CDS/RDS files Envoy reloads live.

Modules: `routing` (the typed table), `intent_routing` (a group's RoutingIntent -> its
routes and clusters), `xds` (table -> Envoy resources and bootstrap), `validation`
(`envoy --mode validate`), `file_writer` and `configmap_writer` (the two places a table
is published), `router` (`EnvoyRouter`, the loop's RouterPort), `fake` (in-memory router
and writer).
"""
