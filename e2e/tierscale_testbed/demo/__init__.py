"""`make demo`: the operator scaling a live testbed cluster through a compressed day."""
