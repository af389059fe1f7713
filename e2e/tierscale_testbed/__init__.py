"""Local GPU-cluster testbed: control plane, Prometheus, Envoy, simulated vLLM."""
