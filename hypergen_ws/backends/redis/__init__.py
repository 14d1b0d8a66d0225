"""Redis, next to a ``channels_redis`` layer: history store, presence operations, the Lua scripts."""
