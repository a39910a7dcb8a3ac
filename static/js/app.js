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

  // Incident page: once a replay has answered, offer its output as the sample's expected answer.
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("[data-replay-slot]").forEach(function (slot) {
      var use = slot.querySelector("[data-use-output]");
      use.hidden = !slot.querySelector(use.getAttribute("data-use-output").split(" ").pop());
    });
  });
  document.addEventListener("click", function (event) {
    var use = event.target.closest("[data-use-output]");
    var output = use && document.querySelector(use.getAttribute("data-use-output"));
    if (output) document.querySelector(use.getAttribute("data-into")).value = output.textContent;
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
  // Sample values: the fields, or the JSON box when "Edit as JSON" is ticked (the server reads the same choice).
  function syncSamples(form) {
    var asJson = form.querySelector("input[name=samples_as_json]");
    if (!asJson) return;
    var fields = document.getElementById("sample-fields"), json = document.getElementById("sample-json");
    if (fields) fields.hidden = asJson.checked;
    if (json) json.hidden = !asJson.checked;
  }
  function samplesChanged(form) {
    form.dispatchEvent(new Event("change", { bubbles: true }));  // redraws the preview
  }
  document.addEventListener("change", function (event) {
    if (event.target.name === "samples_as_json" && event.target.form) syncSamples(event.target.form);
  });
  // A redraw answering an edit made before the author toggled "Edit as JSON" is dropped: it would overwrite what
  // they type now (or bring back a message they just removed).
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var asJson = document.querySelector("#authoring input[name=samples_as_json]");
    var incoming = event.detail.fragment && event.detail.fragment.firstElementChild;
    var from = incoming && incoming.getAttribute("data-samples-from");
    if (asJson && from && (from === "json") !== asJson.checked) event.preventDefault();
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    var form = document.getElementById("authoring");
    if (form) syncSamples(form);
  });
  // A chat placeholder's sample messages: add from the list's <template>, remove a row.
  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-sample-message]");
    var remove = event.target.closest("[data-remove-sample-message]");
    if (add) {
      var list = add.closest("[data-sample-list]");
      var index = Number(list.getAttribute("data-next-index") || "0");
      list.setAttribute("data-next-index", String(index + 1));
      var html = list.querySelector("template").innerHTML.replace(/__i__/g, String(index));
      add.insertAdjacentHTML("beforebegin", html);
      var rows = list.querySelectorAll("[data-sample-message]");
      rows[rows.length - 1].querySelector("textarea").focus();
    } else if (remove) {
      var form = remove.form;
      remove.closest("[data-sample-message]").remove();
      if (form) samplesChanged(form);
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("authoring");
    if (form) { syncKind(form); syncSamples(form); }
  });
})();
