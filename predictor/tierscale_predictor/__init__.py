"""How long does a vLLM replica take: step-time profiles, the V1 engine model, fitting,
latency and capacity prediction, online calibration. Imports nothing else of tierscale.

Modules (import the module, call its functions): `profiles` (StepProfile, load_profile),
`engine` (Replica, EngineRequest, RequestTiming, simulate), `latency` (LatencyModel,
WorkloadShape, SloTarget, predict, predict_at_concurrency, mix_shapes), `capacity`
(work_s_per_request, max_busy_frac, max_rate_rps), `fit`, `modelfile`, `calibration`,
`loadgen` (synthetic load on the engine), `profilecsv` (measurement CSV reader).
See docs/predictor.md.
"""
