import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.errors import IllegalTransitionError
from mm.lifecycle import State, allowed, transition


def test_transition_running_to_degraded_and_back_is_allowed():
    state = transition(State.STARTING, State.RUNNING)
    state = transition(state, State.DEGRADED)
    assert transition(state, State.RUNNING) == State.RUNNING


def test_transition_stopped_to_running_raises():
    with pytest.raises(IllegalTransitionError, match="stopped -> running"):
        transition(State.STOPPED, State.RUNNING)


@given(st.sampled_from(State), st.sampled_from(State))
def test_transition_every_unlisted_move_raises(current: State, target: State):
    if target in allowed(current):
        assert transition(current, target) == target
    else:
        with pytest.raises(IllegalTransitionError):
            transition(current, target)


def test_transition_failed_reachable_from_every_live_state():
    for state in (State.STARTING, State.RUNNING, State.DEGRADED, State.STOPPING):
        assert transition(state, State.FAILED) == State.FAILED
