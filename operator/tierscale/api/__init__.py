"""The SLOTier API: pydantic models (single source of truth), CRD generation, codec."""
