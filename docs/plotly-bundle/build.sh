#!/usr/bin/env bash
# Rebuild static/vendor/plotly/plotly.min.js from the pinned plotly.js (the version the plotly Python package ships,
# `python -c "from plotly.offline import get_plotlyjs_version as v; print(v())"`), with plotly.js's own esbuild settings
# (its esbuild-config.js) only the core and the histogram trace. Needs Node.js and the npm registry; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --silent
version=$(node -p 'require("plotly.js/package.json").version')
npx esbuild entry.js --bundle --minify --format=iife --global-name=Plotly --target=es2016 \
  --define:global=window --define:define.amd=false --loader:.css=empty \
  --banner:js="/** plotly.js (promptreg: scatter, histogram - minified) v$version | MIT License | https://github.com/plotly/plotly.js */" \
  --outfile=../../static/vendor/plotly/plotly.min.js
rm -rf node_modules
