// Live battles: stream both answers over the websocket, unlock the vote when both are complete.
// Frames (see arena/consumers.py): snapshot, delta, done, error, restart. Nothing here knows a model's name.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
"use strict";

(function () {
  // Character counters under the prompt boxes.
  document.querySelectorAll("textarea[data-max]").forEach((area) => {
    const counter = document.querySelector(`.char-count[data-for="${area.id}"]`);
    if (!counter) return;
    const update = () => (counter.textContent = String(area.value.length));
    area.addEventListener("input", update);
    update();
  });
  // One submit per prompt form: a double click must not start two battles.
  document.querySelectorAll("form.live-prompt").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (form.classList.contains("sent")) {
        event.preventDefault();
        return;
      }
      form.classList.add("sent");
      form.querySelectorAll("button[type=submit]").forEach((b) => (b.disabled = true));
    });
  });

  const root = document.getElementById("live-battle");
  if (!root) return;

  const STATUS_WORDS = { queued: "waiting…", running: "writing…", done: "finished", failed: "could not answer" };
  const sides = {};
  for (const [label, key] of [["A", "a"], ["B", "b"]]) {
    const answer = document.getElementById(`answer-${key}`);
    sides[label] = {
      answer,
      status: document.getElementById(`status-${key}`),
      state: answer.dataset.status || "queued",
      text: null, // the Text node receiving deltas
    };
  }
  const verdicts = document.getElementById("verdicts");
  const wait = document.getElementById("live-wait");
  const failure = document.getElementById("live-failure");
  const failureText = document.getElementById("live-failure-text");
  const continueForm = document.getElementById("live-continue");
  const moreTurns = root.dataset.moreTurns === "1";
  const failures = [];

  function setText(side, text) {
    const s = sides[side];
    s.answer.classList.add("streaming");
    s.answer.textContent = "";
    s.text = document.createTextNode(text);
    s.answer.appendChild(s.text);
  }

  function setStatus(side, state) {
    const s = sides[side];
    s.state = state;
    s.answer.dataset.status = state;
    s.status.textContent = STATUS_WORDS[state] || state;
  }

  function finish(side, html) {
    const s = sides[side];
    s.answer.classList.remove("streaming");
    s.answer.innerHTML = html; // sanitised on the server (Markdown rendered through an allow-list)
    s.text = null;
    setStatus(side, "done");
  }

  function fail(side, message) {
    const s = sides[side];
    s.answer.classList.remove("streaming");
    s.answer.textContent = "";
    setStatus(side, "failed");
    failures.push(`Model ${side} could not answer: ${message}`);
    failureText.textContent = `${failures.join(" ")} This battle will not count.`;
  }

  function refresh() {
    const failed = sides.A.state === "failed" || sides.B.state === "failed";
    const ready = !failed && sides.A.state === "done" && sides.B.state === "done";
    root.classList.toggle("ready", ready);
    root.classList.toggle("failed", failed);
    verdicts.hidden = failed;
    verdicts.querySelectorAll("button").forEach((b) => (b.disabled = !ready));
    wait.hidden = ready || failed;
    failure.hidden = !failed;
    continueForm.hidden = !(ready && moreTurns);
  }

  function handle(frame) {
    const side = frame.side;
    if (frame.type === "snapshot") {
      for (const label of ["A", "B"]) {
        const state = frame[label];
        if (state.status === "done") finish(label, state.html);
        else if (state.status === "failed") {
          if (sides[label].state !== "failed") fail(label, state.message);
        } else {
          setText(label, state.text);
          setStatus(label, state.status);
        }
      }
    } else if (frame.type === "delta" && sides[side]) {
      const s = sides[side];
      if (!s.text) setText(side, "");
      s.text.appendData(frame.text);
      if (s.state !== "running") setStatus(side, "running");
    } else if (frame.type === "done" && sides[side]) {
      finish(side, frame.html);
    } else if (frame.type === "error" && sides[side]) {
      fail(side, frame.message);
    } else if (frame.type === "restart" && sides[side]) {
      setText(side, ""); // its worker died mid-answer; a new run writes it again from the start
      setStatus(side, "queued");
    }
    refresh();
  }

  function settled() {
    return ["done", "failed"].includes(sides.A.state) && ["done", "failed"].includes(sides.B.state);
  }

  let retryDelay = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${root.dataset.ws}`);
    socket.addEventListener("open", () => (retryDelay = 500));
    socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (event.code === 4403) {
        failureText.textContent = "This battle belongs to another browser.";
        failure.hidden = false;
        return;
      }
      if (settled()) return;
      // Reconnect; the snapshot brings back the text stored so far.
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
  }

  refresh();
  if (!settled()) connect();
})();
