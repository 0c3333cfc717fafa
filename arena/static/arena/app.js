// Arena voter pages: keyboard shortcuts, time-on-task, one submit per battle, and voting in place.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
//
// Voting in place: the vote is sent with fetch and its reply reveals the two models on this page and
// carries the voter's next battle, which "Next battle" shows without loading a page: one request per
// battle. Without fetch, or if the reply is not a vote, the form posts as usual and the server's
// pages (reveal, then next battle) do the same in three requests. Every state has its own URL, and
// Back or reload always asks the server, so what is shown never differs from what is stored.
"use strict";

(function () {
  let form = document.getElementById("battle-form");
  const pristine = form && form.dataset.url ? form.cloneNode(true) : null; // the empty form, for the next battle
  let openedAt = performance.now();
  let nextBattle = null; // the last vote's reply: the battle "Next battle" shows
  let movedInPlace = false;

  function clickFor(key) {
    const target = document.querySelector(`[data-key~="${key}"]`);
    if (target && !target.disabled && !target.closest("[hidden]")) {
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
      if (event.persisted && (movedInPlace || document.querySelector("#battle-form.sent"))) location.reload();
    });
    // Back or forward between the states this page moved through: the server shows each as stored.
    window.addEventListener("popstate", () => {
      if (movedInPlace) location.reload();
    });
  }

  function bind(target) {
    let submitted = false;
    target.addEventListener("submit", (event) => {
      if (submitted) {
        event.preventDefault();
        return;
      }
      submitted = true;
      target.elements.duration_ms.value = String(Math.round(performance.now() - openedAt));
      // Lock the buttons after the first vote; the chosen button's value still travels
      // with the form because the browser reads it before this handler returns.
      const chosen = event.submitter;
      if (chosen) {
        const hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = chosen.name;
        hidden.value = chosen.value;
        target.appendChild(hidden);
      }
      target.querySelectorAll("button[type=submit]").forEach((b) => (b.disabled = true));
      target.classList.add("sent");
      if (!pristine || !window.fetch) return; // the ordinary post
      event.preventDefault();
      voteInPlace(target)
        .then((stored) => {
          if (stored) return;
          submitted = false; // refused for now (too fast, a bad score): the voter may vote again
          target.classList.remove("sent");
          target.querySelectorAll("input[type=hidden][name=verdict]").forEach((input) => input.remove());
          target.querySelectorAll("button[type=submit]").forEach((b) => (b.disabled = false));
        })
        .catch(() => target.submit());
    });
  }

  function showError(target, message) {
    target.parentElement.querySelectorAll(".notice-error").forEach((node) => node.remove());
    const notice = document.createElement("p");
    notice.className = "notice notice-error";
    notice.setAttribute("role", "alert");
    notice.textContent = message;
    target.before(notice);
  }

  async function voteInPlace(target) {
    const body = new FormData(target);
    body.set("next_battle", "1");
    const response = await fetch(target.action, {
      method: "POST",
      body: body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    let reply = null;
    try {
      reply = await response.json();
    } catch (error) {
      reply = null;
    }
    if (response.ok && reply && reply.left && reply.right) {
      reveal(target, reply);
      return true;
    }
    if ((response.status === 400 || response.status === 429) && reply && reply.message) {
      showError(target, reply.message);
      return false;
    }
    location.assign(target.dataset.url); // refused for good (already voted, withdrawn, closed): the page says why
    return true;
  }

  function reveal(target, reply) {
    const main = target.parentElement;
    main.querySelectorAll(".notice-error").forEach((node) => node.remove());
    const notice = document.createElement("section");
    notice.className = "notice reveal";
    notice.setAttribute("role", "status");
    const thanks = document.createElement("p");
    const verdict = document.createElement("strong");
    verdict.textContent = reply.verdict_label;
    thanks.append("Thank you! You voted ", verdict, ".");
    notice.appendChild(thanks);
    main.prepend(notice);

    [
      ["#label-a", "Model A: ", "name-a", reply.left.model, "left"],
      ["#label-b", "Model B: ", "name-b", reply.right.model, "right"],
    ].forEach(([selector, prefix, id, name, side]) => {
      const label = target.querySelector(selector);
      const span = document.createElement("span");
      span.className = "model-name";
      span.id = id;
      span.textContent = name; // a model's name is text, never markup
      label.replaceChildren(prefix, span);
      if (reply.verdict === side) label.closest(".side").classList.add("winner");
    });
    target.querySelectorAll("fieldset").forEach((fieldset) => (fieldset.disabled = true));
    target.querySelector(".verdicts").hidden = true;

    const actions = document.createElement("p");
    actions.className = "actions";
    const next = document.createElement("a");
    next.className = "button primary";
    next.id = "next-battle";
    next.href = reply.next;
    next.dataset.key = "n";
    const key = document.createElement("kbd");
    key.textContent = "N";
    next.append("Next battle ", key);
    actions.appendChild(next);
    target.after(actions);

    nextBattle = reply.next_battle || null;
    next.addEventListener("click", (event) => {
      if (!nextBattle) return; // none handed out: the next page says why
      event.preventDefault();
      showNext(nextBattle);
    });
    movedInPlace = true;
    history.pushState(null, "", target.dataset.url); // as the server's post leads to the reveal
  }

  function showNext(battle) {
    const main = form.parentElement;
    main.querySelectorAll(".notice.reveal, .notice-error, .actions").forEach((node) => node.remove());
    const conversation = document.createElement("template");
    conversation.innerHTML = battle.conversation_html; // sanitised on the server, as on the page
    const shown = main.querySelector("section.conversation");
    if (shown) shown.replaceWith(conversation.content);
    else main.prepend(conversation.content);

    const fresh = pristine.cloneNode(true);
    fresh.action = battle.vote_url;
    fresh.dataset.url = battle.url;
    fresh.querySelectorAll("input[type=radio]").forEach((input) => (input.checked = false));
    fresh.querySelector("#answer-a").innerHTML = battle.left_html; // sanitised on the server, as on the page
    fresh.querySelector("#answer-b").innerHTML = battle.right_html;
    form.replaceWith(fresh);
    form = fresh;
    bind(form);
    nextBattle = null;
    openedAt = performance.now();
    history.pushState(null, "", battle.url);
    window.scrollTo(0, 0);
  }

  if (form) bind(form);
})();
