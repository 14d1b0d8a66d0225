from hypergen_ws import autoconsumers

websocket_urlpatterns = autoconsumers()  # every @consumer of every installed app
