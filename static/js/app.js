// promptreg: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Confirmation dialogs: htmx loads the confirmation into #dialog-body, we open it as a modal.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "dialog-body") {
      var dialog = document.getElementById("dialog");
      if (!dialog.open) dialog.showModal();
      var first = dialog.querySelector("textarea, input:not([type=hidden]), button");
      if (first) first.focus();
    }
  });
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-close-dialog]");
    var dialog = document.getElementById("dialog");
    if (close && dialog && dialog.open && dialog.contains(close)) {
      event.preventDefault();
      dialog.close();
    }
  });

  // Forms that ask before they act (retire).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // Authoring form: show the text editor or the chat messages, following the Format choice.
  function syncKind(form) {
    var checked = form.querySelector("input[name=kind]:checked");
    if (!checked) return;
    form.querySelectorAll("[data-kind]").forEach(function (block) {
      block.hidden = block.getAttribute("data-kind") !== checked.value;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.name === "kind" && event.target.form) syncKind(event.target.form);
  });
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("authoring");
    if (form) syncKind(form);
  });
})();
