// Shared helpers of the demo pages. Every piece of text from the network or
// the user goes into the DOM with textContent (el() below), never parsed as markup.

import { RelayClient, RelayError, errorName, participantKey } from "/sdk/relay-client.js";
import { qualityLabel, sameSettings, tileSettings } from "/sdk/relay-policy.js";
import { NAME_RE, cleanMessage, mutedText, pausedText, reconnectingText } from "/static/words.js";

export { RelayClient, RelayError, participantKey, NAME_RE };

/** $ finds one element by id. */
export const $ = (id) => document.getElementById(id);

/**
 * el builds an element: attrs are attributes (class, data-*, ...) or
 * on<event> handlers; children are nodes or strings (as text).
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = String(v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** The URL's query parameter, or def. */
export function param(name, def = "") {
  const v = new URLSearchParams(location.search).get(name);
  return v === null || v === "" ? def : v;
}

/** A short random suffix for default identities. */
export function rand(n = 4) {
  const a = new Uint8Array(n);
  crypto.getRandomValues(a);
  return [...a].map((x) => (x % 36).toString(36)).join("");
}

/**
 * describe turns an error into one line: "4003 forbidden: ...". The code's
 * word is said once, however often the server's message repeats it.
 */
export function describe(err) {
  if (err instanceof RelayError) {
    const word = errorName(err.code);
    const msg = cleanMessage(err.serverMessage, word);
    return (err.method ? err.method + " → " : "") + err.code + " " + word + (msg ? ": " + msg : "");
  }
  return (err && err.message) || String(err);
}

// At most this many toasts show at once (the oldest goes first): they live
// in the top bar, which covers nothing of the page.
const MAX_TOASTS = 2;

/** toast shows a short message in the top bar for ms. */
export function toast(text, kind = "info", ms = 5000) {
  let box = $("toasts");
  if (!box) {
    box = el("div", { id: "toasts", role: "status", "aria-live": "polite" });
    const bar = document.querySelector(".topbar");
    const spacer = bar && bar.querySelector(".spacer");
    if (spacer) spacer.after(box);
    else if (bar) bar.append(box);
    else document.body.prepend(box);
  }
  const n = el("div", { class: "notice " + kind, title: text }, text);
  box.append(n);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  setTimeout(() => n.remove(), ms);
}

/** setNotice fills a notice element with text (or hides it when empty). */
export function setNotice(node, text, kind = "info") {
  node.textContent = text || "";
  node.className = "notice " + kind;
  node.hidden = !text;
}

/** The token for identity/room/role: ?token= from the URL, else the dev endpoint. */
export async function getToken(identity, room, role) {
  const given = param("token");
  if (given) return given;
  return mintToken(identity, room, role);
}

/** mintToken asks the dev endpoint (relayd --dev) for a token. */
export async function mintToken(identity, room, role) {
  let res;
  try {
    res = await fetch("/dev/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ identity, room: room || "", role: role || "" }),
    });
  } catch (err) {
    throw new Error("could not reach the server: " + err.message);
  }
  if (res.status === 404) {
    throw new Error("no token: this server is not in --dev mode; open the page with ?token=<jwt> from your back end");
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = body.error || {};
    throw new RelayError(e.code || res.status, e.message || res.statusText, { method: "POST /dev/token" });
  }
  return body.token;
}

/**
 * fetchRecordings lists a room's finished recordings with a token of that
 * room: {supported: false} when the server does not let such a token list
 * them (only an admin may), else {supported: true, recordings}.
 */
export async function fetchRecordings(room, token) {
  let res;
  try {
    res = await fetch("/v1/rooms/" + encodeURIComponent(room) + "/recordings", {
      headers: { Authorization: "Bearer " + token },
      cache: "no-store",
    });
  } catch {
    return { supported: true, recordings: [] }; // the network: try again later
  }
  if (res.status === 401 || res.status === 403 || res.status === 404 || res.status === 405) return { supported: false };
  if (!res.ok) return { supported: true, recordings: [] };
  const body = await res.json().catch(() => ({}));
  return { supported: true, recordings: Array.isArray(body.recordings) ? body.recordings : [] };
}

/** recordingURL is where a <video> plays a recording: its url with the room token. */
export function recordingURL(rec, token) {
  const u = new URL(rec.url, location.href);
  if (token && !u.searchParams.has("token")) u.searchParams.set("token", token);
  return u.pathname + u.search;
}

/** fetchRooms lists rooms from the dev endpoint; null when not in --dev. */
export async function fetchRooms() {
  const res = await fetch("/dev/rooms", { cache: "no-store" });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error("rooms: HTTP " + res.status);
  const body = await res.json();
  return Array.isArray(body) ? body : body.rooms || [];
}

/** connect makes a client for the token and joins. */
export async function connectAndJoin(token, options) {
  const client = new RelayClient(options);
  try {
    await client.connect("/v1/ws", token);
    const res = await client.join();
    return { client, res };
  } catch (err) {
    client.close();
    throw err;
  }
}

// ---- resuming (protocol 1.1): a lost connection, or a reload

/**
 * The server's --reconnect-grace in ms, as the page is told it (?grace=
 * seconds; else relayd's default, 30 s): the server does not say it.
 */
export function graceMs() {
  const s = Number(param("grace"));
  return Number.isFinite(s) && s > 0 ? s * 1000 : 30000;
}

/** resumeKey is where a page keeps its session for a reload (sessionStorage, per tab). */
export function resumeKey(page, room, identity) {
  return "relayd:" + page + ":" + room + ":" + identity;
}

let countdownTimer = null;

/**
 * showReconnecting says "Reconnecting… (N s left)" in node until stop
 * (the returned function, or the next call): deadline is when the server
 * stops holding the session (ms since the epoch; 0: not known).
 */
export function showReconnecting(node, deadline) {
  clearInterval(countdownTimer);
  const tick = () => {
    setNotice(node, reconnectingText(deadline ? deadline - Date.now() : 0), "info");
    node.dataset.reconnecting = "true";
  };
  tick();
  countdownTimer = setInterval(tick, 500);
  return stopReconnecting.bind(null, node);
}

/** stopReconnecting ends showReconnecting's countdown and clears node. */
export function stopReconnecting(node) {
  clearInterval(countdownTimer);
  countdownTimer = null;
  if (node.dataset.reconnecting) {
    delete node.dataset.reconnecting;
    setNotice(node, "");
  }
}

export const roleLabel = { host: "Host", cohost: "Co-host", viewer: "Viewer", relay: "Relay" };
export const statusLabel = {
  idle: "Not live yet",
  live: "Live",
  waiting_reconnect: "Host reconnecting",
  ended: "Ended",
  recorded: "Recorded",
};

/** statusBadge is a badge for a room status (LIVE, ...). */
export function statusBadge(status, id) {
  return el("span", { class: "badge " + status, id, "data-status": status }, status === "live" ? "Live" : statusLabel[status] || status);
}

/** setBadge updates a badge element in place. */
export function setBadge(node, word, text) {
  node.className = "badge " + word;
  node.dataset.status = word;
  node.textContent = text || statusLabel[word] || word;
}

const roleOrder = { host: 0, cohost: 1, relay: 2, viewer: 3 };

/**
 * Tiles keeps one tile per publisher of a client's room (host, co-hosts,
 * relayed hosts) in a grid, from track.subscribed / track.unsubscribed.
 * With a 1.1 server each tile also asks for the video it can show
 * (track.settings: a small tile a small layer, a tile nobody sees no video
 * at all) and shows the quality it gets (track.layer, and the decoded
 * size).
 */
export class Tiles {
  constructor(grid, client, { emptyText = "Nobody is on stage yet", actions, adaptive = true } = {}) {
    this.grid = grid;
    this.client = client;
    this.emptyText = emptyText;
    this.actions = actions; // (participant) => [buttons]
    this.tiles = new Map(); // participantKey -> {node, video, audio, stat}
    /** Ask for layers by tile size and visibility (false: leave track.settings to the caller). */
    this.adaptive = adaptive;
    this._sent = new Map(); // video track id -> the settings last asked for it
    this._onScreen = new Map(); // participantKey -> the tile is on screen (IntersectionObserver)
    this._askTimer = null;
    this._watchViews();
    this.offs = [
      client.on("track.subscribed", (ev) => this._add(ev)),
      client.on("track.unsubscribed", (ev) => this._remove(ev)),
      client.on("participant.updated", ({ participant }) => this._relabel(participant)),
      client.on("participant.left", ({ participant }) => this._drop(participantKey(participant))),
      client.on("track.stream", () => this._paused()),
      client.on("track.muted", () => this._muted()),
      client.on("track.published", () => this._muted()),
      client.on("track.layer", () => this._quality()),
      client.on("track.updated", () => this._askSoon()),
      client.on("reconnected", (res) => {
        // A fresh session starts from the server's defaults again.
        if (!res || !res.resumed) this._sent.clear();
        this._askSoon();
      }),
    ];
    this.timer = setInterval(() => this._stats(), 1000);
    this._render();
  }

  destroy() {
    for (const off of this.offs) off();
    if (this._unwatch) this._unwatch();
    clearTimeout(this._askTimer);
    clearInterval(this.timer);
    for (const key of [...this.tiles.keys()]) this._drop(key);
  }

  _add({ participant, participantKey: key, stream, mediaTrack }) {
    let t = this.tiles.get(key);
    if (!t) {
      const video = el("video", { autoplay: true, playsinline: true, muted: true });
      video.muted = true;
      const audio = el("audio", { autoplay: true });
      const name = el("span", { class: "name" });
      const badge = el("span", { class: "badge" });
      const stat = el("span", { class: "stat", hidden: true });
      const actions = el("div", { class: "tile-actions" });
      const paused = el("div", { class: "paused", hidden: true });
      const camOff = el("div", { class: "cam-off", hidden: true });
      const mute = el("span", { class: "badge mute", hidden: true });
      const quality = el("span", { class: "badge quality", hidden: true });
      const node = el("div", { class: "tile" }, video, audio, camOff, paused, stat, actions, el("div", { class: "caption" }, name, badge, quality, mute));
      t = { node, video, audio, name, badge, stat, actions, paused, camOff, mute, quality, participant, height: 0 };
      this.tiles.set(key, t);
      this.grid.append(node);
      if (this._io) this._io.observe(node);
      if (this._ro) this._ro.observe(video);
    }
    t.participant = participant;
    this._label(t, participant, key);
    if (mediaTrack.kind === "video") {
      t.video.srcObject = new MediaStream(stream.getVideoTracks());
      t.video.play().catch(() => {});
    } else {
      t.audio.srcObject = new MediaStream(stream.getAudioTracks());
      t.audio.play().catch(() => this._needUnmute());
    }
    this._render();
    this._paused();
    this._muted();
    this._askSoon();
  }

  // ---- what each tile asks for (protocol 1.1 track.settings)

  // _watchViews follows what changes what a tile can show: the tab hidden
  // or shown, a tile scrolled off or on screen, a tile resized.
  _watchViews() {
    const ask = () => this._askSoon();
    document.addEventListener("visibilitychange", ask);
    window.addEventListener("resize", ask);
    if (typeof IntersectionObserver === "function") {
      this._io = new IntersectionObserver((entries) => {
        for (const e of entries) if (e.target.dataset.key) this._onScreen.set(e.target.dataset.key, e.isIntersecting);
        ask();
      });
    }
    if (typeof ResizeObserver === "function") this._ro = new ResizeObserver(ask);
    this._unwatch = () => {
      document.removeEventListener("visibilitychange", ask);
      window.removeEventListener("resize", ask);
      if (this._io) this._io.disconnect();
      if (this._ro) this._ro.disconnect();
    };
  }

  // _askSoon asks once things settle (a resize fires many times).
  _askSoon() {
    clearTimeout(this._askTimer);
    this._askTimer = setTimeout(() => this._askSettings(), 250);
  }

  // _videoOf is the received video entry of a tile's publisher.
  _videoOf(key) {
    for (const e of this.client.remoteTracks.values()) {
      if (e.mediaTrack.kind === "video" && e.participant && participantKey(e.participant) === key) return e;
    }
    return null;
  }

  // _askSettings sends each tile's track.settings when what it wants
  // changed (relay-policy.js's tileSettings decides).
  _askSettings() {
    const c = this.client;
    if (!this.adaptive || c.version !== "1.1" || !c.joined) return;
    for (const [key, t] of this.tiles) {
      const e = this._videoOf(key);
      if (!e || !e.track) continue;
      const want = tileSettings({
        hidden: document.hidden, visible: this._onScreen.get(key) !== false,
        width: t.video.clientWidth, height: t.video.clientHeight, dpr: window.devicePixelRatio || 1,
      }, e.track.layers);
      // The server starts every track at its defaults: no need to say those.
      const before = this._sent.get(e.trackId) || { paused: false, quality: "auto", maxWidth: 0 };
      if (sameSettings(want, before)) continue;
      this._sent.set(e.trackId, want);
      t.node.dataset.asked = want.paused ? "paused" : want.quality + (want.maxWidth ? " " + want.maxWidth : "");
      c.setTrackSettings(e.trackId, want).catch((err) => {
        this._sent.delete(e.trackId);
        if (err.code === -32601) this.adaptive = false; // a server without simulcast's part of 1.1
        else if (err.code !== -1) console.warn("track.settings:", err.message);
      });
    }
  }

  // _quality shows the quality a tile gets: HD, SD or LD from the decoded
  // height (else track.layer's quality), with the layer in its title.
  _quality() {
    for (const [key, t] of this.tiles) {
      const e = this._videoOf(key);
      const layer = e ? this.client.trackLayers.get(e.trackId) : null;
      const label = qualityLabel(layer && layer.quality, t.height);
      t.quality.hidden = !label;
      t.quality.textContent = label;
      t.quality.title = layer ? layer.quality + " layer" + (layer.reason && layer.reason !== "requested" ? " (" + layer.reason + ")" : "") : "";
      if (label) t.node.dataset.quality = label;
      else delete t.node.dataset.quality;
      if (layer) t.node.dataset.layer = layer.quality;
      else delete t.node.dataset.layer;
    }
  }

  // _muted shows which of a tile's tracks its publisher (or an operator)
  // muted (protocol 1.1: the track objects' muted, track.muted): "Camera
  // off" over a muted video, "Mic off" by the name for muted audio.
  _muted() {
    for (const [key, t] of this.tiles) {
      const kinds = new Set();
      for (const tr of this.client.tracks.values()) {
        if (tr.muted && this.client._ownerKey(tr) === key) kinds.add(tr.kind);
      }
      t.camOff.hidden = !kinds.has("video");
      t.camOff.textContent = kinds.has("video") ? mutedText("video") : "";
      t.mute.hidden = !kinds.has("audio");
      t.mute.textContent = kinds.has("audio") ? mutedText("audio") : "";
      if (kinds.size === 0) delete t.node.dataset.muted;
      else t.node.dataset.muted = [...kinds].sort().join(" ");
    }
  }

  // _paused shows "Paused by the host" (and the like) on a tile whose
  // video the server paused: track.stream of protocol 1.1 (a paused relay,
  // a publisher reconnecting). Servers without it never pause.
  _paused() {
    for (const [key, t] of this.tiles) {
      let why = null;
      for (const [id, st] of this.client.trackStreams || []) {
        const e = this.client.remoteTracks.get(id);
        if (e && e.participant && participantKey(e.participant) === key && e.mediaTrack.kind === "video") why = st.reason;
      }
      t.paused.hidden = why === null;
      t.paused.textContent = why === null ? "" : pausedText(why);
      if (why === null) delete t.node.dataset.paused;
      else t.node.dataset.paused = why;
    }
  }

  _label(t, p, key) {
    const role = p.role || "";
    t.node.dataset.identity = p.identity;
    t.node.dataset.role = role;
    t.node.dataset.key = key;
    t.name.textContent = p.name || p.identity;
    t.badge.className = "badge " + role;
    t.badge.textContent = role === "relay" && p.relayFrom ? "Relayed from " + p.relayFrom.room : roleLabel[role] || role;
    t.badge.hidden = !role;
    t.actions.replaceChildren(...(this.actions ? this.actions(p) : []));
    this._sort();
  }

  _relabel(p) {
    const key = participantKey(p);
    const t = this.tiles.get(key);
    if (t) {
      t.participant = p;
      this._label(t, p, key);
    }
  }

  _remove({ participantKey: key, stream }) {
    const t = this.tiles.get(key);
    if (!t) return;
    if (!stream || stream.getTracks().length === 0) {
      this._drop(key);
      return;
    }
    if (stream.getVideoTracks().length === 0) t.video.srcObject = null;
    if (stream.getAudioTracks().length === 0) t.audio.srcObject = null;
  }

  _drop(key) {
    const t = this.tiles.get(key);
    if (!t) return;
    t.video.srcObject = null;
    t.audio.srcObject = null;
    if (this._io) this._io.unobserve(t.node);
    if (this._ro) this._ro.unobserve(t.video);
    t.node.remove();
    this.tiles.delete(key);
    this._render();
  }

  _sort() {
    const nodes = [...this.tiles.values()].sort((a, b) => (roleOrder[a.participant.role] ?? 9) - (roleOrder[b.participant.role] ?? 9));
    for (const t of nodes) this.grid.append(t.node);
  }

  _render() {
    let ph = this.grid.querySelector(".placeholder");
    if (this.tiles.size === 0 && !ph) {
      ph = el("div", { class: "tile placeholder" }, this.emptyText);
      this.grid.append(ph);
    } else if (this.tiles.size > 0 && ph) {
      ph.remove();
    }
  }

  _needUnmute() {
    if (document.getElementById("unmute")) return;
    const b = el("button", { id: "unmute", class: "primary" }, "🔊 Click to hear the stream");
    b.addEventListener("click", () => {
      for (const t of this.tiles.values()) t.audio.play().catch(() => {});
      b.remove();
    });
    this.grid.before(b);
  }

  async _stats() {
    if (this.tiles.size === 0) return;
    const stats = await this.client.videoStats().catch(() => []);
    // How the media gets here (debug info): UDP, TCP (ICE-TCP) or TURN.
    const transport = await transportOf(this.client, "subscriber");
    if (transport) this.grid.dataset.transport = transport;
    for (const s of stats) {
      const entry = this.client.remoteTracks.get(s.trackId);
      if (!entry || !entry.participant) continue;
      const t = this.tiles.get(participantKey(entry.participant));
      if (!t || !s.frameWidth) continue;
      t.stat.hidden = false;
      t.stat.textContent = s.frameWidth + "×" + s.frameHeight + (s.codec ? " " + s.codec.replace(/^video\//, "") : "") +
        (transport ? " · " + transportLabel[transport] : "");
      t.stat.title = transport ? "connected over " + transportLabel[transport] : "";
      t.height = s.frameHeight;
    }
    this._quality();
  }
}

/** attachLocal shows a local stream in a (mirrored) preview video. */
export function attachLocal(video, stream) {
  video.muted = true;
  video.srcObject = stream;
  video.play().catch(() => {});
}

/** markNav highlights the current page in the top bar. */
export function markNav() {
  for (const a of document.querySelectorAll(".topbar nav a")) {
    if (a.getAttribute("href") === location.pathname) a.setAttribute("aria-current", "page");
  }
}

/** The transports a PeerConnection's media can take, as the server's metrics name them. */
export const transportLabel = { udp: "UDP", tcp: "TCP", turn_udp: "TURN/UDP", turn_tcp: "TURN/TCP", turn_tls: "TURN/TLS" };

/**
 * transportOf reads one of the client's PeerConnections' getStats (target
 * "publisher" | "subscriber"): the selected candidate pair's local
 * candidate gives "udp", "tcp" (ICE-TCP), or "turn_udp" / "turn_tcp" /
 * "turn_tls" (a relay candidate, by how the browser reaches the TURN
 * server: its relayProtocol); "" before a pair is selected.
 */
export async function transportOf(client, target = "subscriber") {
  const report = await client.getStats(target).catch(() => null);
  if (!report) return "";
  let pair = null;
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === "candidate-pair" && s.state === "succeeded" && s.nominated) pair = s;
    });
  }
  const local = pair && report.get(pair.localCandidateId);
  if (!local) return "";
  if (local.candidateType === "relay") return "turn_" + (local.relayProtocol || "udp");
  return local.protocol === "tcp" ? "tcp" : "udp";
}
