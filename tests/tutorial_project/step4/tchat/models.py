from django.conf import settings
from django.db import models


class Message(models.Model):
    room = models.SlugField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.CharField(max_length=500)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created"]
        permissions = [("can_chat", "Can chat")]
