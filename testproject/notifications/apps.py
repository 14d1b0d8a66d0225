from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Notifications pushed from the backend (views, threads, management commands) to open pages."""

    name = "testproject.notifications"
    label = "notifications"
    verbose_name = "Notifications"
