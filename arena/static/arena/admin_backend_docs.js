/* Model entry admin: when the backend kind changes, open that kind's settings beside the form. */
(function () {
  "use strict";
  function show(kind) {
    document.querySelectorAll("#backend-docs details").forEach(function (details) {
      details.open = details.id === "backend-doc-" + kind;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_backend");
    if (!select) return;
    select.addEventListener("change", function () { show(select.value); });
  });
})();
