// assay dashboard: small progressive enhancements (the pages work without JavaScript).
// - a <select data-autosubmit> submits its form when changed with the mouse (the `by` and
//   metric selectors); changed with the keyboard it waits for the form's button, so that
//   arrowing through the options does not load a page per option (WCAG 3.2.2);
// - an <input data-filter="TABLE-ID"> hides the rows of that table that do not contain its text.
"use strict";
(function () {
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      var byKeyboard = false;
      select.addEventListener("keydown", function () { byKeyboard = true; });
      select.addEventListener("pointerdown", function () { byKeyboard = false; });
      select.addEventListener("change", function () {
        if (byKeyboard || !select.form) { return; }
        if (select.form.requestSubmit) { select.form.requestSubmit(); } else { select.form.submit(); }
      });
    });
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      var table = document.getElementById(input.getAttribute("data-filter"));
      if (!table) { return; }
      input.addEventListener("input", function () {
        var needle = input.value.trim().toLowerCase();
        table.querySelectorAll("tbody tr").forEach(function (row) {
          var hit = !needle || row.textContent.toLowerCase().indexOf(needle) !== -1;
          row.classList.toggle("hidden", !hit);
        });
      });
    });
  });
})();
