"""Generation of the Helm chart's derived files (`charts/tierscale/`): CRDs, RBAC rules,
settings as values and their schema, recording rules, dashboards and the README.

Used by `tierscale chart`; the operator itself never imports it.
"""
