// Viewer: watch one room; a tile per host, co-host and relayed host; the
// room's chat beside the video. When the host invites this viewer (from
// the chat, say), the invitation shows as a banner at once: accepting makes
// the viewer a co-host in place, and "Go on stage" publishes camera and
// microphone. A kicked viewer is told so, and the page does not reconnect.
// When the stream ends the page says why (the room's endReason) and, when
// the server lets a viewer list the recordings, offers to play them here.
import {
  $, el, NAME_RE, RelayClient, Tiles, attachLocal, connectAndJoin, describe, fetchRecordings, fetchRooms, getToken, graceMs, markNav,
  param, rand, recordingURL, resumeKey, setBadge, setNotice, showReconnecting, statusLabel, stopReconnecting, toast,
} from "/static/app.js";
import { chatPanel } from "/static/chat.js";
import { badNameText, endedText } from "/static/words.js";

markNav();

const room = param("room");
// A viewer without a name keeps the one it was given across a reload of
// the tab, so that the reload resumes its session (protocol 1.1).
const identity = param("identity") || keptIdentity();

function keptIdentity() {
  const key = "relayd:watch-identity:" + room;
  try {
    const kept = sessionStorage.getItem(key);
    if (kept && NAME_RE.test(kept)) return kept;
    const id = "viewer-" + rand();
    sessionStorage.setItem(key, id);
    return id;
  } catch {
    return "viewer-" + rand();
  }
}
const app = (window.app = {
  client: null, tiles: null, chat: null, room, identity, token: "", invitations: new Map(), onStage: false,
  recordings: null, // the room's recordings once the stream ended (when the server lists them to viewers)
});

if (!room || !NAME_RE.test(room)) {
  // A bad name is said, and kept in the box to fix: never swapped for another room.
  $("pick").hidden = false;
  if (room) {
    $("room-input").value = room;
    setNotice($("pick-notice"), badNameText(room), "error");
  }
  $("room-input").focus();
} else {
  $("viewer").hidden = false;
  $("room-title").textContent = room;
  $("me").textContent = "You: " + identity;
  document.title = "relayd · " + room;
  app.chat = chatPanel({ idleText: "The chat opens when you join the room." });
  start();
}

let waiting = false;

function isEnded(r) {
  return !!r && (r.status === "ended" || r.status === "recorded");
}

function showRoom(r) {
  if (!r) return;
  setBadge($("room-status"), r.status, statusLabel[r.status]);
  $("room-host").textContent = r.host ? "Host: " + r.host : "";
  showViewers(isEnded(r) ? NaN : Number(r.viewers));
  // REC: viewers are told they are recorded (servers that say so in the room object).
  $("rec-badge").hidden = !(r.recording === true && !isEnded(r));
  if (r.title) $("room-title").textContent = r.title;
  if (r.status === "waiting_reconnect") {
    setNotice($("notice"), "The host lost the connection. Waiting for them to come back…", "info");
    waiting = true;
  } else if (waiting) {
    setNotice($("notice"), "");
    waiting = false;
  }
  if (isEnded(r)) ended(r);
}

// showViewers says how many watch ("" for NaN: an ended room has nobody
// watching, whatever its last count said).
function showViewers(n) {
  $("room-viewers").textContent = !Number.isFinite(n) ? "" : n === 1 ? "1 watching" : n + " watching";
}

// countViewers keeps the count live between room.updated notifications
// (which come with status changes only): every join and leave of the
// room reaches every participant, viewers' too.
function countViewers(client) {
  if (!client.participant || isEnded(client.room)) return;
  let n = client.participant.role === "viewer" ? 1 : 0;
  for (const p of client.participants.values()) if (p.role === "viewer") n++;
  showViewers(n);
}

// ended shows the end, with its reason (r: the room object, when known).
function ended(r) {
  $("ended").hidden = false;
  $("ended-detail").textContent = endedText(r);
  $("room-viewers").textContent = "";
  $("rec-badge").hidden = true;
  setBadge($("room-status"), "ended", "Ended");
  setNotice($("notice"), "");
  clearInvitations();
  offerRecording(r);
}

// ---- the recording

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// offerRecording looks for the room's recordings once it ended: in the
// room object (servers that list them there), else from the recordings
// list (servers that let a token of the room list them). The files are
// final a moment after the end, so it asks again for a while: up to a
// minute when the room said it recorded, 10 s otherwise.
async function offerRecording(r) {
  if (app.recordings !== null || !app.token) return;
  app.recordings = [];
  const said = !!r && r.recording === true;
  const note = (text) => {
    $("recording-note").textContent = text;
    $("recording-note").hidden = !text;
  };
  for (let i = 0; i < (said ? 30 : 5); i++) {
    let list = r && Array.isArray(r.recordings) ? r.recordings : [];
    if (list.length === 0) {
      const res = await fetchRecordings(room, app.token);
      if (!res.supported) break;
      list = res.recordings;
    }
    if (list.length > 0) {
      app.recordings = list;
      note("");
      $("watch-recording").hidden = false;
      return;
    }
    if (said) note("Preparing the recording…");
    await sleep(2000);
  }
  note(said ? "The recording is not available." : "");
}

$("watch-recording").addEventListener("click", () => {
  const list = app.recordings || [];
  if (list.length === 0) return;
  $("ended").hidden = true;
  $("tiles").hidden = true;
  $("playback").hidden = false;
  $("playback-room").textContent = room;
  // The host's file first: one WebM per publisher.
  const host = app.client && app.client.room ? app.client.room.host : "";
  const sorted = [...list].sort((a, b) => (a.participant === host ? 0 : 1) - (b.participant === host ? 0 : 1));
  $("playback-files").replaceChildren(...sorted.map((rec, i) => el("button", {
    class: "small" + (i === 0 ? " primary" : ""), "data-recording": rec.name, onclick: (ev) => play(rec, ev.currentTarget),
  }, rec.participant + (Number.isFinite(rec.duration) ? " · " + clock(rec.duration) : ""))));
  play(sorted[0], $("playback-files").firstElementChild);
});

function play(rec, button) {
  for (const b of $("playback-files").children) b.classList.toggle("primary", b === button);
  const v = $("playback-video");
  v.src = recordingURL(rec, app.token);
  v.dataset.recording = rec.name;
  v.play().catch(() => {}); // a click started it: sound is allowed
}

function clock(seconds) {
  const s = Math.round(seconds);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

// kicked: the host removed us (socket closed with 4003), or a ban refused
// our join. The client does not reconnect.
function kicked(detail) {
  $("kicked").hidden = false;
  $("kicked-detail").textContent = detail;
  setBadge($("room-status"), "disconnected", "Removed");
  setNotice($("notice"), "");
  offStage();
  clearInvitations();
  if (app.tiles) app.tiles.destroy();
  app.tiles = null;
  app.chat.closed("You were removed from this room.");
}

async function start() {
  setBadge($("room-status"), "connecting", "Connecting");
  let token;
  try {
    token = await getToken(identity, room, "viewer");
  } catch (err) {
    setNotice($("notice"), describe(err), "error");
    return;
  }
  app.token = token;
  const key = resumeKey("watch", room, identity);
  const kept = RelayClient.storedSession(key, { grace: graceMs() });
  if (kept) showReconnecting($("notice"), Date.now() + kept.graceLeft);
  for (;;) {
    try {
      const { client, res } = await connectAndJoin(token, { resumeKey: key, reconnectGrace: graceMs() });
      if (kept) stopReconnecting($("notice"));
      app.client = client;
      app.tiles = new Tiles($("tiles"), client, { emptyText: "Waiting for the host's video…" });
      client.on("room.updated", ({ room: r }) => showRoom(r));
      for (const ev of ["participant.joined", "participant.left", "participant.updated", "role.changed"]) {
        client.on(ev, () => countViewers(client));
      }
      client.on("invitation.updated", ({ invitation }) => putInvitation(invitation));
      client.on("role.changed", ({ role, previous }) => roleChanged(role, previous));
      client.on("kicked", () => kicked("The host removed you from this stream."));
      client.on("reconnecting", ({ attempt, resuming, deadline }) => {
        // 1.1: the server holds the session for its grace: say how long is left.
        if (resuming) showReconnecting($("notice"), deadline);
        else setNotice($("notice"), "Connection lost; reconnecting (attempt " + attempt + ")…", "info");
      });
      client.on("reconnected", () => {
        stopReconnecting($("notice"));
        setNotice($("notice"), "");
        loadInvitations();
      });
      client.on("disconnected", ({ ended: roomEnded, kicked: wasKicked, reason }) => {
        stopReconnecting($("notice"));
        if (wasKicked) return; // said by "kicked"
        offStage();
        if (roomEnded || isEnded(client.room)) ended(client.room);
        else {
          setBadge($("room-status"), "disconnected", "Disconnected");
          setNotice($("notice"), "Disconnected" + (reason ? ": " + reason : "") + ". Reload to try again.", "error");
        }
      });
      showRoom(res.room);
      app.chat.attach(client);
      loadInvitations();
      return;
    } catch (err) {
      stopReconnecting($("notice"));
      if (err.code === 4004) {
        // Not created yet: wait for the host.
        setBadge($("room-status"), "idle", "Not started");
        setNotice($("notice"), "Room “" + room + "” does not exist yet. Waiting for the host to start it…", "info");
        await new Promise((r) => setTimeout(r, 3000));
        continue;
      }
      if (err.code === 4009) {
        // Ended before we came: the lobby's list (--dev) knows why.
        const rooms = await fetchRooms().catch(() => null);
        ended((rooms || []).find((r) => r && r.name === room) || null);
        return;
      }
      if (err.code === 4003) {
        // A viewer token is refused only when the host banned this identity.
        kicked("The host removed you from this stream; you can watch again when it ends.");
        return;
      }
      setBadge($("room-status"), "disconnected", "Error");
      setNotice($("notice"), describe(err), "error");
      return;
    }
  }
}

// ---- invitations to the stage

function putInvitation(inv) {
  if (!inv || inv.user !== identity) return;
  const before = app.invitations.get(inv.id);
  app.invitations.set(inv.id, inv);
  if (before && before.status !== inv.status && ["cancelled", "expired", "removed"].includes(inv.status)) {
    toast("Invitation to " + inv.room + ": " + inv.status, "error");
  }
  renderInvitations();
}

async function loadInvitations() {
  const c = app.client;
  if (!c) return;
  try {
    for (const inv of await c.listInvitations()) if (inv.user === identity) app.invitations.set(inv.id, inv);
  } catch (err) {
    if (err.code !== -1) setNotice($("notice"), describe(err), "error");
  }
  renderInvitations();
}

function clearInvitations() {
  app.invitations.clear();
  renderInvitations();
}

function renderInvitations() {
  const shown = [...app.invitations.values()]
    .filter((i) => i.status === "pending" || i.status === "accepted")
    .sort((a, b) => (a.room === room ? 0 : 1) - (b.room === room ? 0 : 1) || String(b.updatedAt || "").localeCompare(String(a.updatedAt || "")));
  $("invites").replaceChildren(...shown.map(banner));
}

function banner(inv) {
  const here = inv.room === room;
  const attrs = (cls) => ({ class: cls, "data-invitation": inv.id, "data-status": inv.status, "data-room": inv.room, "data-host": inv.host });
  if (inv.status === "pending") {
    const mins = inv.expiresAt ? Math.max(0, Math.round((Date.parse(inv.expiresAt) - Date.now()) / 60000)) : null;
    return el("div", attrs("banner"),
      el("div", { class: "text" },
        el("strong", {}, inv.host), here ? " invites you on stage in " : " invites you to co-host ", el("strong", {}, inv.room),
        el("div", { class: "muted small" },
          here ? "Accept to go on stage with your camera and microphone." : "Another room: you would join its stage from the co-host page.",
          mins !== null ? " Expires in " + mins + " min." : "")),
      el("button", { class: "primary", "data-accept": inv.id, onclick: () => answer(inv, true) }, "Accept"),
      el("button", { "data-reject": inv.id, onclick: () => answer(inv, false) }, "Decline"));
  }
  const text = el("div", { class: "text" }, "You are a co-host of ", el("strong", {}, inv.room), " (host ", el("strong", {}, inv.host), ")");
  if (!here) {
    return el("div", attrs("banner accepted"), text,
      el("a", { class: "button primary", href: "/cohost?identity=" + encodeURIComponent(identity) }, "Open the co-host page"));
  }
  const role = app.client && app.client.participant && app.client.participant.role;
  let controls;
  if (app.onStage) {
    controls = [
      el("span", { class: "badge accepted" }, "On stage"),
      el("button", { class: "danger", "data-leave-stage": inv.room, onclick: leaveStage }, "Leave stage"),
    ];
  } else if (role === "cohost") {
    controls = [el("button", { class: "live", "data-go-on-stage": inv.room, onclick: goOnStage }, "Go on stage")];
  } else {
    controls = [el("span", { class: "muted small" }, "Joining the stage…")];
  }
  return el("div", attrs("banner accepted"), text, ...controls);
}

async function answer(inv, accept) {
  if (!app.client) return;
  try {
    const res = accept ? await app.client.acceptInvitation(inv.id) : await app.client.rejectInvitation(inv.id);
    app.invitations.set(res.id, res);
    setNotice($("notice"), "");
  } catch (err) {
    setNotice($("notice"), describe(err), "error");
  }
  renderInvitations();
}

// ---- the stage

async function goOnStage() {
  const c = app.client;
  if (!c) return;
  for (const b of document.querySelectorAll("[data-go-on-stage]")) b.disabled = true;
  try {
    const stream = await c.publish(); // camera + microphone
    attachLocal($("self"), stream);
    $("self-wrap").hidden = false;
    app.onStage = true;
  } catch (err) {
    setNotice($("notice"), describe(err), "error");
  }
  renderInvitations();
}

async function leaveStage() {
  const c = app.client;
  if (!c) return;
  try {
    await c.leaveStage(); // back to viewer; the invitation becomes "left"
  } catch (err) {
    setNotice($("notice"), describe(err), "error");
  }
  offStage();
}

function offStage() {
  app.onStage = false;
  $("self").srcObject = null;
  $("self-wrap").hidden = true;
  renderInvitations();
}

function roleChanged(role, previous) {
  if (previous === "cohost" && role === "viewer") {
    if (app.onStage) toast("You are off the stage; still watching.");
    offStage();
    return;
  }
  renderInvitations();
}
