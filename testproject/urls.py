"""HTTP routes of the demo project. Websocket routes are in routing.py (every @consumer, collected)."""
from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password_change/done/", views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("chat/", include("testproject.chat.urls")),
    path("counter/", include("testproject.counter.urls")),
    path("notifications/", include("testproject.notifications.urls")),
    path("admin/", admin.site.urls),
    path("hypergen_ws/", include("hypergen_ws.urls")),
]

if settings.HYPERGEN_INSTALLED:
    urlpatterns += [path("hypergen/", include("testproject.hgdemo.urls"))]

# With DEBUG=True, serve static files (the JavaScript client) under plain daphne/uvicorn too, not only under
# `manage.py runserver`. Does nothing when DEBUG=False: serve them with whitenoise or the web server then.
urlpatterns += staticfiles_urlpatterns()
