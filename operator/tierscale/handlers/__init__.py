"""kopf handlers: the operator's control loop (observe -> decide -> act -> report)."""
