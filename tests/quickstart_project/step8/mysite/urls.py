from django.urls import include, path

from chat import views

urlpatterns = [
    path("", views.lobby),
    path("accounts/", include("django.contrib.auth.urls")),  # login and logout
]
