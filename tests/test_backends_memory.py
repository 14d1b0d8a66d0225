"""The in-memory history store (hypergen_ws.backends.memory) and what every store shares (backends.base)."""
from __future__ import annotations

import threading

from hypergen_ws.backends.base import EPOCH_LIMIT, Snapshot, fresh_entries, new_epoch
from hypergen_ws.backends.memory import MemoryStore


def test_append_numbers_frames_and_keeps_the_last_n():
    store = MemoryStore()
    seqs = [store.append_sync("g", f"f{i}", 3) for i in range(5)]
    assert [s for s, _e in seqs] == [1, 2, 3, 4, 5] and len({e for _s, e in seqs}) == 1
    snapshot = store.read_sync("g", 0)
    assert snapshot.seq == 5 and [t for _s, _ts, t in snapshot.entries] == ["f2", "f3", "f4"]
    assert store.read_sync("g", 4).entries[0][0] == 5 and store.read_sync("g", None).entries == []


def test_flush_starts_a_new_epoch():
    store = MemoryStore()
    _seq, epoch = store.append_sync("g", "x", 10)
    store.flush_sync("g")
    seq2, epoch2 = store.append_sync("g", "y", 10)
    assert seq2 == 1 and epoch2 != epoch
    store.append_sync("h", "z", 10)
    store.flush_sync()
    assert store.groups() == []


def test_seqs_are_unique_across_threads():
    store = MemoryStore()
    got: list[int] = []

    def publish() -> None:
        for _ in range(200):
            got.append(store.append_sync("g", "x", 10)[0])

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == list(range(1, 801))


def test_old_entries_expire_and_idle_groups_are_dropped(settings):
    settings.HYPERGEN_WS = {"HISTORY_TTL": 0, "SEQUENCE_TTL": 0}
    store = MemoryStore()
    store.append_sync("g", "x", 10)
    assert store.clean_expired() >= 1
    assert fresh_entries(Snapshot(1, 1, [(1, 0.0, "old")])) == []


def test_epochs_are_positive_and_exact_in_javascript():
    assert all(0 < new_epoch() < EPOCH_LIMIT <= 2**53 for _ in range(1000))
