"""`tierscale backtest`: what tierscale would have done over a stretch of Prometheus
history, next to what the cluster ran (`history`: the inputs as range queries; `engine`:
the operator's own tick in dry-run at every control interval; `report`: table, CSV and
plots)."""
