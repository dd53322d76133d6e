from tests.setuplogs.conftest import run  # noqa: F401  (a stored run, for log lines)
