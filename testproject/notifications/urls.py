from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.page, name="page"),
    path("push/sync/", views.push_sync, name="push_sync"),
    path("push/async/", views.push_async, name="push_async"),
    path("push/thread/", views.push_thread, name="push_thread"),
]
