"""Load generator: trace or synthetic arrivals, streamed through Envoy with tier headers.

Modules: ``workload`` (what and when), ``client`` (one timed streaming request),
``runner`` (open-loop, bounded), ``stats`` (attainment, percentiles), ``report``.
"""
