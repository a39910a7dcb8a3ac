// Draws the Plotly figures the server built (experiments/charts.py, rollout/charts.py). Each chart is a
// <div data-plotly="ID"> beside a <script type="application/json" id="ID"> (json_script).
(function () {
  "use strict";

  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-plotly]").forEach(function (element) {
      var source = document.getElementById(element.getAttribute("data-plotly"));
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      window.Plotly.react(element, figure.data, figure.layout, { displayModeBar: false, responsive: true });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  // htmx refreshes swap the analysis panel: draw the new figures.
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.detail.elt || document); });
})();
