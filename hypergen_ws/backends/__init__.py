"""The backends layer: the only place that knows a concrete channel layer, history store or server.

Every use of another library's private attributes lives here, feature-detected, with a WARNING logged once when
a fast path falls back to the plain one (:func:`hypergen_ws.backends.layers.warn_fallback`).
"""
