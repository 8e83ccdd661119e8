// simulcast-relay status page, steering: with a /video/v1 access token that may write, add a target to a
// live stream made through the API, and disable, enable or remove one. The credential stays in this tab
// (sessionStorage) and goes only to this relay, as HTTP Basic, from this page's own origin.
// Plain DOM (textContent only), no libraries; the status cards above are drawn by app.js.
"use strict";

(() => {
  const panel = document.getElementById("steer");
  const signIn = document.getElementById("steer-sign-in");
  const work = document.getElementById("steer-work");
  const choice = document.getElementById("steer-live-stream");
  const list = document.getElementById("steer-targets");
  const message = document.getElementById("steer-message");
  const STORE = "relay-access-token";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  function say(text, bad) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(bad));
  }

  async function call(method, path, body) {
    const headers = { Authorization: `Basic ${sessionStorage.getItem(STORE) || ""}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`/video/v1${path}`, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error.messages.join("; "));
    return answer.data;
  }

  async function load(keep) {
    const streams = (await call("GET", "/live-streams?limit=100")).filter((s) => s.source === "api");
    const wanted = keep || choice.value;
    choice.replaceChildren(...streams.map((s) => el("option", { value: s.id }, s.passthrough ? `${s.passthrough} (${s.id})` : s.id)));
    if (streams.some((s) => s.id === wanted)) choice.value = wanted;
    const stream = streams.find((s) => s.id === choice.value);
    list.replaceChildren(...(stream ? stream.simulcast_targets.map((t) => targetRow(stream, t)) : []));
    work.hidden = false;
    if (!streams.length) say("No live stream made through the API yet (POST /video/v1/live-streams).");
  }

  function targetRow(stream, target) {
    const path = `/live-streams/${stream.id}/simulcast-targets/${target.id}`;
    const act = (label, run) => {
      const button = el("button", { type: "button", "data-action": label.toLowerCase() }, label);
      button.addEventListener("click", async () => {
        try { await run(); say(`${label}: ${target.passthrough}`); await load(stream.id); } catch (err) { say(String(err.message || err), true); }
      });
      return button;
    };
    return el("li", { "data-target": target.passthrough, "data-enabled": String(target.enabled) },
      el("span", { class: "name" }, target.passthrough), " ", el("span", { class: "url" }, target.url), " ",
      target.enabled ? act("Disable", () => call("PATCH", path, { enabled: false }))
        : act("Enable", () => call("PATCH", path, { enabled: true })),
      " ", act("Remove", () => call("DELETE", path)));
  }

  signIn.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(signIn);
    sessionStorage.setItem(STORE, btoa(`${form.get("id")}:${form.get("secret")}`));
    signIn.reset();
    try { await load(); signIn.hidden = true; say("Signed in."); } catch (err) { say(String(err.message || err), true); }
  });

  choice.addEventListener("change", () => load().catch((err) => say(String(err.message || err), true)));

  document.getElementById("steer-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = { url: form.get("url"), stream_key: form.get("stream_key") };
    if (form.get("passthrough")) body.passthrough = form.get("passthrough");
    try {
      const target = await call("POST", `/live-streams/${choice.value}/simulcast-targets`, body);
      event.target.reset();
      say(`Added: ${target.passthrough}`);
      await load(choice.value);
    } catch (err) { say(String(err.message || err), true); }
  });

  panel.hidden = false;
  if (sessionStorage.getItem(STORE)) load().then(() => { signIn.hidden = true; }).catch(() => sessionStorage.removeItem(STORE));
})();
