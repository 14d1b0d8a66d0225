"""``CommunicatorFactory``: the type of the ``hgws_communicator`` fixture, for the annotations of users' tests.

Here rather than beside the fixture so that ``from hypergen_ws.testing import CommunicatorFactory`` needs no
pytest, like the rest of :mod:`hypergen_ws.testing`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from asgiref.typing import ASGIApplication

from .communicator import DEFAULT_TIMEOUT, ConsumerCommunicator
from .connection import Headers

if TYPE_CHECKING:
    from ..decorators import Consumer

    from .connection import User

__all__ = ["CommunicatorFactory"]


class CommunicatorFactory(Protocol):
    """What ``hgws_communicator`` is: :class:`~hypergen_ws.testing.ConsumerCommunicator`'s signature.

    ``async def test_chat(hgws_communicator: CommunicatorFactory) -> None: ...``
    """

    def __call__(self, consumer: Consumer | str, *, user: User | None = None,
                 application: ASGIApplication | None = None, headers: Headers | None = None,
                 query: str | Mapping[str, Any] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 answer_pings: bool = True, **url_kwargs: Any) -> ConsumerCommunicator: ...
