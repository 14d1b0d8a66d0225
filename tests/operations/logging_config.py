"""JSON logs of hypergen_ws, one object per line (docs/operations.rst includes this file)."""

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            # pip install python-json-logger: every field hypergen_ws passes in `extra` becomes a key.
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(event)s %(consumer)s %(group)s %(user_id)s %(code)s",
        },
    },
    "handlers": {
        "json": {"class": "logging.StreamHandler", "formatter": "json"},
    },
    "loggers": {
        "hypergen_ws": {"handlers": ["json"], "level": "INFO", "propagate": False},
    },
}
