"""How long does a vLLM replica take: step-time profiles, the V1 engine model, fitting,
latency and capacity prediction, online calibration. Imports nothing else of tierscale."""
