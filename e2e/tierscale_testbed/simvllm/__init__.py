"""Simulated vLLM: OpenAI API, vLLM's metrics, latencies from the engine model, per pod.

Modules: ``discovery`` (the pod -> port files others read), ``pod_watch`` (pods from the
API), ``supervisor`` (one server per Ready pod), ``pod_server`` (HTTP), ``realtime``
(engine model against the wall clock), ``metrics``, ``openai_protocol``, ``token_schedule``.
"""
