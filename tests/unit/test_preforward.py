"""A stage's wakeup-to-forward time: one sample per turn that forwarded, none for a send outside a turn."""

from mm.stats import SampleBuffer
from processes.actor import Actor


def _actor() -> Actor:
    actor = Actor.__new__(Actor)  # only the fields mark_forwarded reads
    actor.wakeups, actor.woke_ns, actor._forwarded_at_wakeup = 0, 0, -1
    actor.preforward_ns = SampleBuffer()
    return actor


def test_the_first_forward_of_a_turn_counts_from_its_wakeup():
    actor = _actor()
    actor.wakeups, actor.woke_ns = 1, 1_000
    actor.mark_forwarded(1_250)
    actor.mark_forwarded(1_900)  # a second send in the same turn is not the hop's
    actor.wakeups, actor.woke_ns = 2, 5_000
    actor.mark_forwarded(5_040)
    assert actor.preforward_ns.values().tolist() == [250, 40]


def test_a_send_outside_a_turn_is_not_counted():
    actor = _actor()
    actor.wakeups = 3  # the turn ended: woke_ns was reset to 0
    actor.mark_forwarded(9_999)
    assert len(actor.preforward_ns) == 0
