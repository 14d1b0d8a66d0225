from hypergen.hypergen import autourls

from . import views

app_name = "hgdemo"

urlpatterns = autourls(views, namespace="hgdemo")
