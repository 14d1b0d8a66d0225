"""A minimal Django project that serves the Channels and hypergen_ws variants of the benchmarks."""
