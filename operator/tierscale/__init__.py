"""tierscale: SLO-tiered autoscaling and spillover routing for vLLM inference pools."""

__version__ = "0.1.0"
