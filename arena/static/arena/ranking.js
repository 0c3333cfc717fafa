// Ranking tasks: order the responses best first, by drag (mouse, pen or touch) or by keyboard.
// Keyboard: focus a response (Tab), then Up / Down move it one place, Home / End to the top /
// bottom, and the number keys 1-8 put it at that place. The order travels as letters ("C A B").
// No inline scripts anywhere (the Content-Security-Policy forbids them).
"use strict";

(function () {
  const form = document.getElementById("ranking-form");
  if (!form) return;
  const list = document.getElementById("ranking-list");
  const orderField = document.getElementById("ranking-order");
  const status = document.getElementById("ranking-status");
  const openedAt = performance.now();

  // With this script the list is the input; the typed field stays as the no-script fallback.
  document.getElementById("ranking-typed").hidden = true;
  orderField.required = false;

  const items = () => Array.from(list.querySelectorAll(":scope > .rank-item"));

  function refresh() {
    const all = items();
    all.forEach((item, i) => {
      item.querySelector(".rank-place").textContent = String(i + 1);
      item.setAttribute("aria-label", `Response ${item.dataset.label}, place ${i + 1} of ${all.length}`);
    });
    orderField.value = all.map((item) => item.dataset.label).join(" ");
  }

  function announce(item) {
    const all = items();
    status.textContent = `Response ${item.dataset.label} is now at place ${all.indexOf(item) + 1} of ${all.length}.`;
  }

  // Move an item to a place by moving its neighbours around it: the item itself never leaves the
  // document, so it keeps the keyboard focus and an ongoing pointer drag.
  function moveTo(item, place) {
    const last = items().length - 1;
    place = Math.max(0, Math.min(last, place));
    let index = items().indexOf(item);
    while (index > place) {
      list.insertBefore(item.previousElementSibling, item.nextElementSibling);
      index -= 1;
    }
    while (index < place) {
      list.insertBefore(item.nextElementSibling, item);
      index += 1;
    }
    refresh();
  }

  list.addEventListener("keydown", (event) => {
    const item = event.target;
    if (!item.classList || !item.classList.contains("rank-item")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const index = items().indexOf(item);
    let place = null;
    if (event.key === "ArrowUp") place = index - 1;
    else if (event.key === "ArrowDown") place = index + 1;
    else if (event.key === "Home") place = 0;
    else if (event.key === "End") place = items().length - 1;
    else if (/^[1-9]$/.test(event.key) && Number(event.key) <= items().length) place = Number(event.key) - 1;
    if (place === null) return;
    event.preventDefault();
    event.stopPropagation();
    moveTo(item, place);
    item.focus();
    announce(item);
  });

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-move]");
    if (!button) return;
    const item = button.closest(".rank-item");
    moveTo(item, items().indexOf(item) + (button.dataset.move === "up" ? -1 : 1));
    button.focus();
    announce(item);
  });

  // Drag by the bar: while the pointer moves, the item takes the place under it.
  let dragged = null;

  list.addEventListener("pointerdown", (event) => {
    const bar = event.target.closest(".rank-bar");
    if (!bar || event.button !== 0 || event.target.closest("button")) return;
    dragged = bar.closest(".rank-item");
    dragged.classList.add("dragging");
    bar.setPointerCapture(event.pointerId);
    event.preventDefault();
  });

  list.addEventListener("pointermove", (event) => {
    if (!dragged) return;
    const others = items().filter((item) => item !== dragged);
    let place = others.length;
    for (let i = 0; i < others.length; i += 1) {
      const box = others[i].getBoundingClientRect();
      if (event.clientY < box.top + box.height / 2) {
        place = i;
        break;
      }
    }
    if (place !== items().indexOf(dragged)) moveTo(dragged, place);
  });

  function endDrag() {
    if (!dragged) return;
    const item = dragged;
    dragged = null;
    item.classList.remove("dragging");
    item.focus({ preventScroll: true });
    announce(item);
  }
  list.addEventListener("pointerup", endDrag);
  list.addEventListener("pointercancel", endDrag);

  let submitted = false;
  form.addEventListener("submit", (event) => {
    if (submitted) {
      event.preventDefault();
      return;
    }
    submitted = true;
    refresh();
    form.elements.duration_ms.value = String(Math.round(performance.now() - openedAt));
    form.querySelectorAll("button").forEach((b) => (b.disabled = true));
    form.classList.add("sent");
  });

  refresh();
})();
