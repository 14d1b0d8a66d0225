"""No HTTP views: the benchmarks only use websockets."""
urlpatterns: list = []
