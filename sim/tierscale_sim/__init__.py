"""Fleet simulator: replays workloads through engine replicas under a scaling policy."""
