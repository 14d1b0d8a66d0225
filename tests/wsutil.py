"""The websocket application of the sample consumers, for ``hypergen_ws.testing.ConsumerCommunicator``.

The sample consumers live outside any installed app, so the project's ``ASGI_APPLICATION`` does not route them;
tests pass this ``application`` (or override the ``hgws_application`` fixture with it).
"""
from __future__ import annotations

from channels.routing import URLRouter

from hypergen_ws import autoconsumers
from tests import sample_consumers

application = URLRouter(autoconsumers(sample_consumers))
