"""Thin adapters to Kubernetes, Prometheus and Envoy, each with an in-memory fake beside it."""
