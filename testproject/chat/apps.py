from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Chat rooms: stored messages, live delivery over one websocket consumer."""

    name = "testproject.chat"
    label = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from . import changes  # noqa: F401  (publishes every saved or deleted message to its room)
