from django.contrib import admin

from .models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["created", "room", "user", "text"]
    list_filter = ["room"]
    search_fields = ["text", "user__username"]
