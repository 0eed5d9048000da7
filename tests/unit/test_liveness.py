from mm.liveness import PeerLiveness

MS = 1_000_000


def test_liveness_never_heard_peer_is_not_alive():
    live = PeerLiveness(["book"], interval_ns=100 * MS, liveness=3)
    assert not live.is_alive("book") and not live.was_seen("book")


def test_liveness_dies_after_three_missed_intervals():
    live = PeerLiveness(["book"], interval_ns=100 * MS, liveness=3)
    live.on_frame("book", 0)
    assert live.tick(299 * MS) == []
    assert live.is_alive("book")
    assert live.tick(300 * MS) == ["book"]
    assert not live.is_alive("book")
    assert live.tick(400 * MS) == []  # reported once


def test_liveness_any_frame_resets_count():
    live = PeerLiveness(["book"], interval_ns=100 * MS, liveness=3)
    live.on_frame("book", 0)
    live.tick(250 * MS)
    assert live.on_frame("book", 250 * MS) is False  # was still alive
    assert live.tick(500 * MS) == []
    assert live.is_alive("book")


def test_liveness_revival_is_reported():
    live = PeerLiveness(["risk"], interval_ns=100 * MS, liveness=1)
    live.on_frame("risk", 0)
    assert live.tick(100 * MS) == ["risk"]
    assert live.on_frame("risk", 150 * MS) is True
    assert live.dead() == set()


def test_liveness_unknown_peer_ignored():
    live = PeerLiveness(["risk"], interval_ns=100 * MS, liveness=1)
    assert live.on_frame("stranger", 0) is False
    assert live.age_ns("stranger", 5) is None
