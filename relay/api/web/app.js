// simulcast-relay status page: polls the status API every 2 s and draws every live stream and target.
// Plain DOM (textContent only: nothing from the API is parsed as HTML), no build step, no libraries.
"use strict";

const REFRESH_MS = 2000;
const main = document.getElementById("streams");
const updated = document.getElementById("updated");
let lastOk = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(status, label) {
  return el("span", { class: `badge status-${status}`, "data-role": "status" }, label || status);
}

function fact(label, value, title) {
  if (value === null || value === undefined || value === "") return null;
  return el("span", { class: "fact", title }, `${label} `, el("b", {}, value));
}

// A counter of the current publish session, with the lifetime total in its tooltip.
function sessionFact(label, value, total) {
  return fact(label, value, `this publish session; ${total} since the relay started`);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return null;
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  return `${m}m ${String(s % 60).padStart(2, "0")}s`;
}

function since(unix) {
  return unix ? duration(Date.now() / 1000 - unix) : null;
}

function kbps(value) {
  if (value === null || value === undefined) return null;
  return value >= 1000 ? `${(value / 1000).toFixed(2)} Mbit/s` : `${Math.round(value)} kbit/s`;
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// A sparkline of the last few minutes on a fixed time axis (the newest sample at the right edge),
// broken where there was no sample; the tallest sample reaches 80% of the height.
let ringSize = 150;

function sparkline(samples, label) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const width = Math.max(ringSize, samples.length, 2) - 1;
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${width} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.dataset.samples = String(samples.filter((v) => v !== null).length);
  const max = Math.max(1, ...samples.filter((v) => v !== null)) * 1.25;
  const offset = width + 1 - samples.length;
  let line = "";
  let area = "";
  let run = [];
  const flush = () => {
    if (!run.length) return;
    line += run.map(([x, y], i) => `${i ? "L" : "M"}${x} ${y}`).join(" ") + " ";
    area += `M${run[0][0]} 100 ` + run.map(([x, y]) => `L${x} ${y}`).join(" ") + ` L${run[run.length - 1][0]} 100 Z `;
    run = [];
  };
  samples.forEach((v, i) => {
    if (v === null) { flush(); return; }
    run.push([offset + i, (100 - (v / max) * 100).toFixed(1)]);
  });
  flush();
  for (const [cls, d] of [["area", area], ["line", line]]) {
    const path = document.createElementNS(ns, "path");
    path.setAttribute("class", cls);
    path.setAttribute("d", d.trim());
    svg.append(path);
  }
  return svg;
}

function ingestFacts(ingest) {
  if (!ingest) return null;
  const video = [ingest.video_codec, ingest.video_profile].filter(Boolean).join(" ");
  const size = ingest.width && ingest.height ? `${ingest.width}×${ingest.height}` : null;
  const audio = [ingest.audio_codec, ingest.audio_sample_rate ? `${ingest.audio_sample_rate / 1000} kHz` : null,
                 ingest.audio_channels ? `${ingest.audio_channels} ch` : null].filter(Boolean).join(" ");
  return el("div", { class: "row", "data-role": "ingest" },
    fact("in", kbps(ingest.bitrate_kbps)),
    fact("video", [video, size, ingest.frame_rate ? `${ingest.frame_rate} fps` : null].filter(Boolean).join(" · ")),
    fact("audio", audio),
    fact("keyframes every", ingest.keyframe_interval !== null ? `${ingest.keyframe_interval.toFixed(1)} s` : null),
    fact("from", ingest.publisher_address));
}

function targetItem(stream, target, samples) {
  const rate = samples.length ? samples[samples.length - 1] : null;
  // A target that keeps failing: how many attempts since it last worked, and when that was.
  const failing = target.status === "errored" || (target.status === "starting" && target.attempts > 1);
  const item = el("li", { class: "target", "data-target": target.passthrough, "data-status": target.status },
    el("div", { class: "row" },
      el("span", { class: "name" }, target.passthrough),
      badge(target.status, target.error_severity === "fatal" ? "errored (fatal)" : target.status),
      target.status === "broadcasting" ? fact("out", kbps(rate)) : null,
      sparkline(samples, `bitrate to ${target.passthrough}`)),
    el("div", { class: "row" },
      el("span", { class: "url" }, target.url),
      fact("up", target.status === "broadcasting" ? since(target.connected_since) : null),
      sessionFact("sent", bytes(target.bytes_sent), bytes(target.bytes_sent_total)),
      sessionFact("dropped", `${target.dropped_frames} frames`, `${target.dropped_frames_total} frames`),
      sessionFact("reconnects", String(target.reconnects), String(target.reconnects_total)),
      failing ? fact("attempts", String(target.attempts)) : null,
      failing ? fact("last connected", target.last_connected_at ? `${since(target.last_connected_at)} ago` : "never")
        : null,
      target.status === "errored" && target.next_attempt_at
        ? fact("retry in", `${Math.max(0, Math.round(target.next_attempt_at - Date.now() / 1000))} s`) : null),
    target.last_error ? el("p", { class: "error", "data-role": "last-error" }, target.last_error) : null);
  return item;
}

function streamCard(stream, history) {
  const hist = (history && history.live_streams[stream.name]) || { ingest: [], simulcast_targets: {} };
  const health = stream.health || { status: "unknown", reasons: [] };
  const card = el("section", { class: "stream", "data-live-stream": stream.name, "data-status": stream.status },
    el("h2", {}, stream.name, badge(stream.status),
      stream.status === "active" ? el("span", { class: `badge status-${health.status}`, "data-role": "health" },
        health.status) : null,
      stream.awaiting_publisher ? el("span", { class: "badge status-starting" }, "waiting for publisher") : null,
      stream.slate === "playing" ? el("span", { class: "badge status-starting", "data-role": "slate" },
        "slate on air") : null),
    el("div", { class: "row" },
      fact("uptime", stream.status === "active" ? since(stream.active_since) : null),
      fact("publish sessions", String(stream.sessions)),
      sessionFact("received", bytes(stream.bytes_received), bytes(stream.bytes_received_total)),
      stream.status === "active" ? sparkline(hist.ingest, `incoming bitrate of ${stream.name}`) : null),
    ingestFacts(stream.ingest),
    health.reasons.length ? el("ul", { class: "reasons", "data-role": "health-reasons" },
      ...health.reasons.map((r) => el("li", {}, r.message))) : null,
    stream.recording ? el("div", { class: "row" }, fact("recording", stream.recording.status),
      fact("file", stream.recording.path), fact("size", bytes(stream.recording.bytes))) : null,
    el("ul", { class: "targets" },
      ...stream.simulcast_targets.map((t) => targetItem(stream, t, hist.simulcast_targets[t.passthrough] || []))));
  return card;
}

async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (response.status === 401) { window.location.reload(); throw new Error("signed out"); }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return (await response.json()).data;
}

async function refresh() {
  try {
    const [streams, history] = await Promise.all([getJson("/api/v1/live-streams"), getJson("/api/v1/history")]);
    ringSize = history.samples;
    main.replaceChildren(...streams.map((s) => streamCard(s, history)));
    main.setAttribute("aria-busy", "false");
    lastOk = Date.now();
    updated.textContent = `updated ${new Date(lastOk).toLocaleTimeString()}`;
    updated.classList.remove("stale");
  } catch (err) {
    updated.textContent = lastOk ? `relay not answering since ${new Date(lastOk).toLocaleTimeString()}` : String(err);
    updated.classList.add("stale");
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
