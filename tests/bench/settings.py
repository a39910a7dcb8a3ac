"""Benchmark-only settings: the production settings plus a URL conf with a bare baseline view.

Selected with DJANGO_SETTINGS_MODULE=tests.bench.settings by tests/bench/fetch.py; never used
by the shipped app (tests/ is not packaged).
"""

from promptreg.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"
