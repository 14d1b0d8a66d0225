"""docs/testing.rst, "With Django's test runner", run from the page: its ``chat/tests.py`` is this module's tests
(Django ``TestCase`` and ``TransactionTestCase`` classes, which pytest-django runs as Django's runner would)."""
from tests.support import pages

pages.exec_file("testing.rst", "chat/tests.py", globals())
