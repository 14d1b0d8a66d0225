"""A consumer whose connects wait at a gate, for the tests of what happens to a socket while it connects.

``gated`` checks its permission by waiting until the gate directory (``HGWS_TEST_GATE``, or :data:`GATE`) holds a
file named ``open``; each connect that waits leaves a file in ``waiting/`` first, so a test (in this process or
another) knows how many connects are under way: the consumer exists, and its user is not yet counted anywhere.
"""
from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from hypergen_ws import command, consumer

#: The gate directory in this process (tests in one process set it); servers read ``HGWS_TEST_GATE``.
GATE: list[Path] = []
#: Seconds a connect waits at the gate at most.
GATE_TIMEOUT = 60.0


def gate_dir() -> Path:
    return GATE[0] if GATE else Path(os.environ["HGWS_TEST_GATE"])


def open_gate(gate: Path) -> None:
    (gate / "open").touch()


def waiting(gate: Path) -> int:
    """How many connects wait at ``gate`` (or waited: the files stay)."""
    return len(list((gate / "waiting").glob("*")))


async def _through_the_gate(user) -> bool:
    gate = gate_dir()
    (gate / "waiting").mkdir(parents=True, exist_ok=True)
    (gate / "waiting" / uuid.uuid4().hex).touch()
    async with asyncio.timeout(GATE_TIMEOUT):
        while not (gate / "open").exists():
            await asyncio.sleep(0.01)
    return bool(user.is_authenticated)


@consumer(perm=_through_the_gate, app_label="tests")
def gated(consumer, request, text):
    """Says who called, once its connect got through the gate."""
    command("said", request.user.username, text)
