"""The SLOTier API: pydantic models (single source of truth), CRD generation, codec.

Import from here: `to_tier`, `load_tiers_yaml` and `SpecError` turn resources into domain
tiers, `build_status` / `invalid_spec_status` turn decisions into status, and
`render_crd_yaml` is what `tierscale crds` writes.
"""

from tierscale.api.codec import FieldError, SpecError, load_tiers_yaml, to_resource, to_tier
from tierscale.api.crd import build_crd, render_crd_yaml
from tierscale.api.durations import format_duration, parse_duration
from tierscale.api.models import API_VERSION, GROUP, KIND, PLURAL, VERSION, SLOTierSpec
from tierscale.api.status import build_status, invalid_spec_status

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "FieldError",
    "SLOTierSpec",
    "SpecError",
    "build_crd",
    "build_status",
    "format_duration",
    "invalid_spec_status",
    "load_tiers_yaml",
    "parse_duration",
    "render_crd_yaml",
    "to_resource",
    "to_tier",
]
