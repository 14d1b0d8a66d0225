"""The chaos run's checker (tests/support/chaos/checker.py) on made-up logs: it must find every broken promise."""
from __future__ import annotations

from tests.support.chaos.checker import ClientLog, Fault, check, table
from tests.support.chaos.clients import Event, Publish


def frames(*rows):
    return [Event(float(t), kind, seq, epoch, tuple(ids)) for t, kind, seq, epoch, ids in rows]


def test_a_clean_log_keeps_the_promise():
    log = ClientLog("c", "feed/r0", frames((1, "sync", 0, 7, ()), (2, "deliver", 1, 7, ["p:1"]),
                                           (3, "deliver", 2, 7, ["p:2"])))
    report = check([log], [Publish("p:1", "feed/r0", "http", 1.5, True), Publish("p:2", "feed/r0", "http", 2.5,
                                                                                  True)])
    assert report.kept_the_promise and report.deliveries == 2 and report.acknowledged == 2, table(report)


def test_a_skipped_seq_without_resync_is_a_silent_gap_and_the_missed_message_is_reported():
    log = ClientLog("c", "feed/r0", frames((1, "sync", 0, 7, ()), (2, "deliver", 1, 7, ["p:1"]),
                                           (4, "deliver", 3, 7, ["p:3"])))
    publishes = [Publish(f"p:{n}", "feed/r0", "worker", n + 0.5, True) for n in (1, 2, 3)]
    report = check([log], publishes)
    assert report.silent_gaps == 1 and report.missed_uncovered == 1 and report.acked_reaching_no_one == 1
    assert not report.kept_the_promise


def test_a_resync_covers_what_was_missed():
    log = ClientLog("c", "feed/r0", frames((1, "sync", 0, 7, ()), (2, "deliver", 1, 7, ["p:1"]),
                                           (4, "resync", 9, 8, ()), (5, "deliver", 10, 8, ["p:3"])))
    publishes = [Publish(f"p:{n}", "feed/r0", "http", n + 0.5, True) for n in (1, 2, 3)]
    report = check([log], publishes)
    assert report.kept_the_promise and report.missed_covered == 1 and report.resyncs == {"resync": 1}


def test_a_sync_that_moves_the_position_is_a_silent_gap():
    log = ClientLog("c", "feed/r0", frames((1, "sync", 0, 7, ()), (2, "deliver", 1, 7, ["p:1"]),
                                           (3, "lost", None, None, ()), (4, "sync", 5, 7, ())))
    assert check([log], []).silent_gaps == 1


def test_duplicates_and_reordering_are_counted_per_publisher():
    log = ClientLog("c", "feed/r0", frames((1, "sync", 0, 7, ()), (2, "deliver", 1, 7, ["p:2"]),
                                           (3, "resync", 0, 8, ()), (4, "deliver", 1, 8, ["p:1"]),
                                           (5, "deliver", 2, 8, ["p:2"])))
    report = check([log], [])
    assert (report.duplicates, report.out_of_order) == (1, 1)


def test_an_acknowledged_message_another_member_got_is_still_missed_by_this_one():
    a = ClientLog("a", "feed/r0", frames((1, "sync", 0, 7, ()), (3, "deliver", 1, 7, ["p:1"]),
                                         (4, "deliver", 2, 7, ["p:2"])))
    b = ClientLog("b", "feed/r0", frames((1, "sync", 0, 7, ()), (4, "deliver", 2, 7, ["p:2"])))
    report = check([a, b], [Publish("p:1", "feed/r0", "call", 2, True), Publish("p:2", "feed/r0", "call", 3, True)])
    assert report.acked_reaching_no_one == 0 and report.missed_uncovered == 1 and report.silent_gaps == 1


def test_each_fault_reports_who_reconnected_and_when_all_were_back():
    log = ClientLog("c", "feed/r0", frames((1, "sync", 0, 7, ()), (11, "lost", None, None, ()),
                                           (12.5, "sync", 0, 7, ())))
    report = check([log], [Publish("p:1", "feed/r0", "http", 10.5, False)], [Fault("kill_server", 10, 12, "x")])
    assert report.faults[0]["clients_reconnected"] == 1 and report.faults[0]["all_back_after"] == 2.5
    assert report.faults[0]["publishes_not_acknowledged"] == 1 and report.longest_without_group == 1.5
    assert "kill_server" in table(report, 1)


def test_frames_passed_move_the_position_without_counting_as_deliveries():
    """A client drops frames it handed over once (the same (epoch, seq)) but moves its position over them."""
    log = ClientLog("c", "feed/r0", frames((1, "sync", 0, 7, ()), (2, "deliver", 1, 7, ["p:1"]),
                                           (3, "deliver", 2, 7, ["p:2"]), (4, "resync", 1, 7, ()),
                                           (5, "passed", 2, 7, ()), (6, "resync", 2, 7, ()),
                                           (7, "deliver", 3, 7, ["p:3"])))
    report = check([log], [])
    assert report.kept_the_promise and report.deliveries == 3, report.problems


def test_a_rolling_restart_counts_the_clients_told_to_reconnect_then_closed_with_1012():
    told = ClientLog("a", "feed/r0", [Event(1, "sync", 0, 7), Event(11, "hint", reason="reconnect in 1.00 s"),
                                      Event(11.1, "lost", reason="close 1012"), Event(12.2, "sync", 0, 7)])
    cut = ClientLog("b", "feed/r0", [Event(1, "sync", 0, 7), Event(11, "lost", reason="ConnectionClosedError"),
                                     Event(12, "sync", 0, 7)])
    report = check([told, cut], [], [Fault("rolling_restart", 10, 13, "daphne then uvicorn")])
    assert report.faults[0]["told_to_reconnect"] == 1 and report.faults[0]["clients_reconnected"] == 2
    assert "hint+1012" in table(report, 1)
