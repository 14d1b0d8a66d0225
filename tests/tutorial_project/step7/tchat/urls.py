from django.urls import path

from . import views

urlpatterns = [
    path("<slug:room_name>/", views.room, name="room"),
]
