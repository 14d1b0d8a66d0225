from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("", views.room_list, name="room_list"),
    path("<slug:room_name>/", views.room, name="room"),
    path("<slug:room_name>/announce/", views.announce, name="announce"),
    path("<slug:room_name>/announce-async/", views.announce_async, name="announce_async"),
]
