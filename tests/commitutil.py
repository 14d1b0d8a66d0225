"""What the publish-on-commit and model-changes tests share: sockets of the sample ``echo`` consumer."""
from __future__ import annotations

from hypergen_ws.testing import ConsumerCommunicator
from tests import sample_consumers as sc
from tests.wsutil import application


class Rollback(Exception):
    """Raised inside ``transaction.atomic()`` to roll it back."""


def group(room: str) -> str:
    return sc.echo.group_name(room=room)


async def connect(room: str) -> ConsumerCommunicator:
    """A socket of the sample ``echo`` consumer in ``room``."""
    comm = ConsumerCommunicator(sc.echo, application=application, room=room)
    assert await comm.connect()
    return comm
