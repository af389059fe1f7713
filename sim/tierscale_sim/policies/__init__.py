"""Scaling policies the simulator compares: tierscale, its ablation and the baselines."""
