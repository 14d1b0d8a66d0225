from django.apps import AppConfig


class CounterConfig(AppConfig):
    """A counter shared by every visitor, updated live."""

    name = "testproject.counter"
    label = "counter"
    verbose_name = "Shared counter"
