from django.apps import AppConfig


class HgdemoConfig(AppConfig):
    """The chat of Hypergen's websocket docs, built with django-hypergen, served by a hypergen_ws consumer."""

    name = "testproject.hgdemo"
    label = "hgdemo"
    verbose_name = "Hypergen chat"
