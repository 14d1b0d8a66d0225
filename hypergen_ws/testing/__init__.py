"""Helpers for testing consumers and the code that publishes to them (docs/testing.rst).

* :class:`ConsumerCommunicator`: a websocket to a ``@consumer`` through the project's routing and middleware,
  with ``call()``, ``receive()``, ``receive_message()``, ``receive_commands()`` and ``assert_nothing()``;
* :func:`capture_publishes`, :func:`assert_published`, :func:`assert_not_published`: what was published to which
  group, from anywhere (views, tasks, management commands, consumers), without a socket in the group;
* :func:`reset`: no state of one test left for the next;
* :class:`CommunicatorFactory`: the type of the ``hgws_communicator`` fixture, for annotations.

The pytest fixtures (``hgws_communicator``, ``hgws_published``, ``hgws_reset``) come with the installed package;
``pytest -p hypergen_ws.testing`` adds a reset around every test. Importing this module needs no pytest.
"""
from __future__ import annotations

from .communicator import CallResult, ConsumerCommunicator, SocketClosed
from .factory import CommunicatorFactory
from .isolation import reset
from .publishes import Published, Publishes, assert_not_published, assert_published, capture_publishes

__all__ = [
    "CallResult",
    "CommunicatorFactory",
    "ConsumerCommunicator",
    "Published",
    "Publishes",
    "SocketClosed",
    "assert_not_published",
    "assert_published",
    "capture_publishes",
    "reset",
]

#: Registered as a pytest plugin (``-p hypergen_ws.testing``), this module loads the plugin proper; a plain
#: import ignores it.
pytest_plugins = ["hypergen_ws.testing.plugin"]
