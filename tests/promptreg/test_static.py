"""Static files: the vendored plotly.js bundle matches the plotly package and draws every chart we build; the
production storage writes hashed, gzipped files once."""

from __future__ import annotations

import re
from pathlib import Path

from django.core.management import call_command
from plotly.offline import get_plotlyjs_version

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "static" / "vendor" / "plotly" / "plotly.min.js"


def test_the_vendored_plotly_bundle_is_the_version_the_plotly_package_ships():
    header = BUNDLE.read_text()[:300]
    assert (
        re.search(r"plotly\.js \(promptreg: scatter, histogram - minified\) v(\S+)", header)[1]
        == get_plotlyjs_version()
    )


def test_the_bundle_draws_every_trace_type_the_chart_builders_use():
    bundled = set(re.findall(r'moduleType:"trace",name:"(\w+)"', BUNDLE.read_text()))
    used = set()
    for builder in (ROOT / "experiments" / "charts.py", ROOT / "rollout" / "charts.py"):
        source = builder.read_text()
        used |= {name.lower() for name in re.findall(r"\bgo\.(\w+)\(", source)} - {"figure", "layout"}
        used |= set(re.findall(r'"type":\s*"(\w+)"', source)) & {
            "bar",
            "box",
            "histogram",
            "heatmap",
            "pie",
            "violin",
            "scattergl",
            "scatter",
        }
    assert used and used <= bundled, used - bundled


def test_production_storage_keeps_hashed_gzipped_files_and_compresses_each_once(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "promptreg.staticfiles.CompressedStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    names = sorted(p.name for p in (tmp_path / "vendor" / "plotly").glob("plotly*"))
    assert len(names) == 2 and re.fullmatch(r"plotly\.min\.[0-9a-f]{12}\.js", names[0]) and names[1] == names[0] + ".gz"
    assert not (tmp_path / "css" / "app.css").exists()  # only hashed names are kept
    gz = tmp_path / "vendor" / "plotly" / names[1]
    written = gz.stat().st_mtime_ns
    call_command("collectstatic", interactive=False, verbosity=0)
    assert gz.stat().st_mtime_ns == written  # the second run did not compress it again
