from django.db import models


class Chat(models.Model):
    """Declares the permission that @consumer(perm="chat.can_chat") checks; it needs no rows."""

    class Meta:
        default_permissions = ()
        permissions = [("can_chat", "Can chat")]
