// plotly.js core (the scatter trace, cartesian axes, shapes, annotations, error bars, legend, hover, modebar) plus
// the one other trace our charts draw, histogram (experiments/charts.py `distributions`).
// tests/promptreg/test_static.py checks the bundle covers every trace type the chart builders use.
var Plotly = require("plotly.js/lib/core");

Plotly.register([require("plotly.js/lib/histogram")]);

module.exports = Plotly;
