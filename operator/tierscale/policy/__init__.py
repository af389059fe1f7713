"""The decision core: joint tier planner, forecasting, stabilisation. Pure functions."""
