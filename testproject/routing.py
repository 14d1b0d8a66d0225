"""Websocket routes: every ``@consumer`` of every installed app."""
from hypergen_ws import autoconsumers

websocket_urlpatterns = autoconsumers()
