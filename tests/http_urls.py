"""URLconf of the HTTP endpoint tests: hypergen_ws's routes included as the docs say."""
from django.urls import include, path

urlpatterns = [path("hypergen_ws/", include("hypergen_ws.urls"))]
