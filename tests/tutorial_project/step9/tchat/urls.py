from django.urls import path

from . import views

urlpatterns = [
    path("<slug:room_name>/", views.room, name="room"),
    path("<slug:room_name>/announce/", views.announce, name="announce"),
]
