"""The core layer: settings, the wire protocol, group names, permissions, argument binding, the registry of
consumers, ``command()``, the state of one connection and the sync/async bridge. Imports nothing of the package
outside this layer."""
