"""The one serialiser (`tierscale.records`): what a state written by another version
reads as."""

from __future__ import annotations

import json

import pytest

from tierscale import records
from tierscale.domain.plans import PlannerState


def test_a_state_with_a_field_this_version_does_not_know_keeps_what_it_knows() -> None:
    # A rollback: the newer operator saved `sized_up_at_by_tier` and another field the
    # older one does not have; the older one must still resume its bias and windows
    # rather than start over (the operator falls back to no state on a RecordError).
    state = PlannerState(last_plan_at_s=1000.0, bias_by_tier={"llm/ide": 1.3})
    envelope = json.loads(records.dumps(state))
    envelope["data"]["a_field_from_a_later_version"] = {"llm/ide": 1.0}
    assert records.loads(PlannerState, json.dumps(envelope)) == state


def test_a_state_saved_before_a_field_existed_reads_with_its_default() -> None:
    envelope = json.loads(records.dumps(PlannerState(bias_by_tier={"llm/ide": 1.3})))
    del envelope["data"]["sized_up_at_by_tier"]
    loaded = records.loads(PlannerState, json.dumps(envelope))
    assert loaded.sized_up_at_by_tier == {} and loaded.bias_by_tier == {"llm/ide": 1.3}


def test_a_field_of_the_wrong_type_is_an_error_naming_it() -> None:
    envelope = json.loads(records.dumps(PlannerState()))
    envelope["data"]["bias_by_tier"] = {"llm/ide": "high"}
    with pytest.raises(records.RecordError, match=r"bias_by_tier\.llm/ide"):
        records.loads(PlannerState, json.dumps(envelope))
