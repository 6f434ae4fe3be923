"""Makes ``pytest conformance/`` run the checklist (see conformance/pytest_plugin.py)."""

from conformance.pytest_plugin import pytest_addoption, pytest_configure, pytest_generate_tests, talkcheck_session

__all__ = ["pytest_addoption", "pytest_configure", "pytest_generate_tests", "talkcheck_session"]
