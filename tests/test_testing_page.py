"""docs/testing.rst, run from the page: its ``tests/test_chat.py``, shown block by block, is this module's tests.

The blocks run in page order in this module's globals (``tests.support.pages.exec_file``), so pytest collects the
page's fixtures and tests here, and a failure points at the page's line.
"""
from tests.support import pages

pages.exec_file("testing.rst", "tests/test_chat.py", globals())
