"""Scaling policies the simulator compares: tierscale, its ablation and the baselines.

`registry.POLICIES` names them all and says how each is built.
"""
