// Arena voter pages: keyboard shortcuts, time-on-task, and one submit per battle.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
"use strict";

(function () {
  const form = document.getElementById("battle-form");
  const openedAt = performance.now();

  function clickFor(key) {
    const target = document.querySelector(`[data-key~="${key}"]`);
    if (target && !target.disabled) {
      target.click();
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" && event.target.type !== "radio") return;
    if (tag === "TEXTAREA" || tag === "SELECT") return;
    if (clickFor(event.key.toLowerCase())) event.preventDefault();
  });

  if (form && form.dataset.url) {
    // The battle's own URL in the address bar (it was handed out at /c/<slug>/vote/): reload shows
    // this battle, and Back after the vote comes here, to this battle and its vote, never a new one.
    if (location.pathname !== form.dataset.url) history.replaceState(history.state, "", form.dataset.url);
    // A page restored from the back/forward cache after a vote would show it unvoted: ask again.
    window.addEventListener("pageshow", (event) => {
      if (event.persisted && form.classList.contains("sent")) location.reload();
    });
  }

  if (form) {
    let submitted = false;
    form.addEventListener("submit", (event) => {
      if (submitted) {
        event.preventDefault();
        return;
      }
      submitted = true;
      form.elements.duration_ms.value = String(Math.round(performance.now() - openedAt));
      // Lock the buttons after the first vote; the chosen button's value still travels
      // with the form because the browser reads it before this handler returns.
      const chosen = event.submitter;
      if (chosen) {
        const hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = chosen.name;
        hidden.value = chosen.value;
        form.appendChild(hidden);
      }
      form.querySelectorAll("button[type=submit]").forEach((b) => (b.disabled = true));
      form.classList.add("sent");
    });
  }
})();
