"""Why a stage stops and what its end of stream tells the stages below (mm/shutdown.py)."""

from mm.shutdown import (
    STAYING_AFTER_HEARTBEATS,
    EndReason,
    combine,
    count_up_heartbeats,
    ends_pipeline,
    new_incarnation,
    reason_for_signal,
    upstream_staying,
)

END, ALONE = EndReason.PIPELINE_END, EndReason.PROGRAM_STOP


def test_reason_for_signal_owned_by_mm_run_ends_the_pipeline_else_stops_one_program():
    assert reason_for_signal(owned=True) is END
    assert reason_for_signal(owned=False) is ALONE


def test_combine_the_pipelines_end_wins_over_one_programs_stop():
    assert combine(None, ALONE) is ALONE
    assert combine(None, END) is END
    assert combine(ALONE, ALONE) is ALONE
    assert combine(ALONE, END) is END  # told to stop alone, then the upstream's pipeline end: pass it on
    assert combine(END, ALONE) is END  # the end of a finite stream, then a signal: still the end


def test_ends_pipeline_only_the_pipelines_end_stops_the_receiver():
    assert ends_pipeline(END)
    assert not ends_pipeline(ALONE)


def test_count_up_heartbeats_counts_running_and_degraded_in_a_row_and_restarts_on_any_other_state():
    count = 0
    for state in ("running", "degraded", "running"):
        count = count_up_heartbeats(count, state)
    assert count == 3
    for state in ("stopping", "starting", "stopped", "failed"):
        assert count_up_heartbeats(count, state) == 0


def test_upstream_staying_after_enough_up_heartbeats_in_a_program_stop_only():
    assert not upstream_staying(ALONE, STAYING_AFTER_HEARTBEATS - 1)
    assert upstream_staying(ALONE, STAYING_AFTER_HEARTBEATS)
    assert not upstream_staying(END, 10 * STAYING_AFTER_HEARTBEATS)  # at the pipeline's end every upstream ends


def test_upstream_staying_not_for_an_upstream_being_stopped_in_the_same_group_stop():
    # signalled just after us, it says RUNNING at most three more times (once before its signal, a timer
    # heartbeat and a state change's in the turn its signal ends), then STOPPING
    count = 0
    for state in ("running", "degraded", "running", "stopping"):
        count = count_up_heartbeats(count, state)
        assert not upstream_staying(ALONE, count)


def test_new_incarnation_is_another_pid_than_the_peers_previous_one():
    assert not new_incarnation(None, 41)  # the first heartbeat we hear
    assert not new_incarnation(41, 41)
    assert new_incarnation(41, 42)
