"""The memory engine (hypergen_ws.backends.memory.engine): the shape of the Redis engine, for one process."""
from __future__ import annotations

import json

from hypergen_ws.backends.engine import Engine
from hypergen_ws.backends.layers import get_engine
from hypergen_ws.backends.memory import MemoryEngine, MemoryStore, memory_engine
from tests.recutil import use_layer


def entry(count: int, since: float = 1.0, name: str = "ann") -> str:
    return json.dumps({"id": f"u:{name}", "user_id": 1, "username": name, "count": count, "since": since})


async def test_presence_counts_a_user_across_processes_and_forgets_the_last_socket():
    presence = MemoryEngine(MemoryStore()).presence
    assert await presence.join("g", "p1", "u:ann", entry(1)) == 1
    assert await presence.join("g", "p2", "u:ann", entry(1, 2.0)) == 2, "another process's socket adds up"
    assert sorted(p for _k, p, _e in await presence.entries("g", ())) == ["p1", "p2"]
    assert await presence.leave("g", "p1", "u:ann", "", True) == 1
    assert await presence.absent("g", ["u:ann", "u:bob"]) == ["u:bob"]
    assert await presence.leave("g", "p2", "u:ann", "", True) == 0
    assert await presence.entries("g", ()) == [] and presence.fields == {} and presence.counts == {}


async def test_presence_reassert_replaces_one_process_and_recounts_and_a_sweep_reports_who_left():
    presence = MemoryEngine(MemoryStore()).presence
    await presence.join("g", "p1", "u:ann", entry(1))
    await presence.join("g", "p2", "u:bob", entry(1, name="bob"))
    await presence.reassert("g", "p1", {"u:ann": entry(3), "u:cid": entry(1, name="cid")})
    assert presence.counts["g"] == {"u:ann": 3, "u:bob": 1, "u:cid": 1}
    gone = await presence.sweep_process("p1")
    assert sorted(info["username"] for _g, info in gone) == ["ann", "cid"]
    assert [(k, p) for k, p, _e in await presence.entries("g", ())] == [("u:bob", "p2")]
    await presence.flush()
    assert await presence.entries("g", ()) == []


async def test_connections_admit_under_the_limit_across_processes():
    counts = MemoryEngine(MemoryStore()).connections
    assert await counts.admit("p1", "u:ann", 2) == (True, 1)
    assert await counts.admit("p2", "u:ann", 2) == (True, 2)
    assert await counts.admit("p1", "u:ann", 2) == (False, 2), "the third socket is over the cap"
    assert await counts.release("p2", "u:ann") == 0
    assert await counts.admit("p1", "u:ann", 2) == (True, 2)
    await counts.reassert("p1", {"u:ann": 1, "u:bob": 0})
    assert counts.counts == {"u:ann": {"p1": 1}}
    await counts.sweep_process("p1")
    assert counts.counts == {}


async def test_the_memory_engine_goes_with_the_in_memory_layer_and_its_processes_do_not_beat(settings):
    use_layer("memory", settings)
    engine: Engine = get_engine()
    assert engine is memory_engine() and engine.kind == "memory" and not engine.processes.beats
    assert await engine.processes.live() == [] and await engine.processes.claim_dead() == []
