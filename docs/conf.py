"""Sphinx configuration for the hypergen_ws documentation."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

import django  # noqa: E402

django.setup()

import hypergen_ws  # noqa: E402

project = "hypergen_ws"
author = "hypergen_ws developers"
copyright = "2026, hypergen_ws developers"
release = version = hypergen_ws.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True  # defaults as written in the source (HypergenConsumer, not <class '...'>)
autodoc_class_signature = "separated"  # classes users get from the package, never construct: no __init__ line
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "furo"
html_static_path = ["_static"]
html_title = f"hypergen_ws {release}"
