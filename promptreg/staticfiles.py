"""Static files: plotly.js from the plotly package, and compressed, immutable copies for production.

With `DEBUG` off, `collectstatic` writes each file under a content-hashed name
(`app.3f2a….css`) with a gzip copy beside it; WhiteNoise serves the gzip copy to
browsers that accept it, and hashed names with `Cache-Control: max-age=315360000,
public, immutable` (a new file is a new name, so caching for ever is safe).
"""

from __future__ import annotations

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage
from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage


class PlotlyFinder(BaseFinder):
    """`vendor/plotly/plotly.min.js`, served locally (never from a CDN); nothing else of the package's 10 MB of data."""

    prefix, name = "vendor/plotly", "plotly.min.js"
    folder = Path(plotly.__file__).parent / "package_data"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        found = str(self.folder / self.name) if path == f"{self.prefix}/{self.name}" else None
        if find_all:
            return [found] if found else []
        return found

    def list(self, ignore_patterns):
        storage = FileSystemStorage(location=self.folder)
        storage.prefix = self.prefix
        yield self.name, storage


class CompressedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's storage, keeping only hashed files and compressing each content once.

    A hashed name is a content, so a `.gz` already beside it is up to date: a restart's
    `collectstatic` skips it (plotly.js alone takes 0.2 s to gzip). No brotli: at its
    default quality it takes 38 s for plotly.js on a 2-core machine, for 15% fewer bytes.
    """

    keep_only_hashed_files = True

    def create_compressor(self, **kwargs):
        return Compressor(use_brotli=False, **kwargs)

    def compress_files(self, paths):
        return super().compress_files([p for p in paths if not Path(self.path(p) + ".gz").exists()])
