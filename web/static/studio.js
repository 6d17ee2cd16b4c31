// Studio: the host's page. Camera preview, go live, chat with moderation
// (invite to stage, delete, kick) on each message, co-hosts and
// invitations, relay to other rooms, recording, end the stream (with its
// reason) and go live again.
import {
  $, el, NAME_RE, RelayClient, Tiles, attachLocal, connectAndJoin, describe, fetchRooms, getToken, graceMs, markNav, mintToken,
  param, resumeKey, setBadge, setNotice, showReconnecting, statusLabel, stopReconnecting, toast,
} from "/static/app.js";
import { ErrorCode, getLocalMedia, relayEventName, relayStateName, relayErrorName } from "/sdk/relay-client.js";
import { chatPanel } from "/static/chat.js";
import { badNameText, endedText, layersText, relayReason } from "/static/words.js";
import { transportLabel, transportOf } from "/static/app.js";

markNav();

const MAX_DESTINATIONS = 4;
const app = (window.app = { client: null, preview: null, tiles: null, chat: null });
app.chat = chatPanel({ actions: chatActions, idleText: "Go live to chat with your viewers." });

$("identity").value = param("identity", "alice");
$("room").value = param("room", "demo");
for (const [id, what] of [["identity", "identity"], ["room", "room"]]) {
  const bad = badNameText($(id).value, what);
  if (bad) setNotice($("notice"), bad, "error");
}

// A reload while live (protocol 1.1): the session the page kept resumes
// while the server still holds it; the page goes live again by itself.
{
  const kept = RelayClient.storedSession(resumeKey("studio", $("room").value, $("identity").value), { grace: graceMs() });
  if (kept && kept.publishing) {
    app.resuming = kept;
    setStatus("reconnecting", "Reconnecting");
    showReconnecting($("notice"), Date.now() + kept.graceLeft);
  }
}

// ---- camera preview

async function startCamera() {
  $("camera-off").hidden = true;
  try {
    app.preview = await getLocalMedia({ audio: true, video: true });
    attachLocal($("preview"), app.preview);
    $("go-live").disabled = !!app.client;
    if (app.resuming && !app.client) $("live-form").requestSubmit();
  } catch (err) {
    $("camera-error").textContent = describe(err);
    $("camera-off").hidden = false;
  }
}
$("camera-retry").addEventListener("click", startCamera);
startCamera();

// ---- going live

function setStatus(word, text) {
  setBadge($("status"), word, text);
}

$("live-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const identity = $("identity").value.trim();
  const room = $("room").value.trim();
  if (!NAME_RE.test(identity) || !NAME_RE.test(room)) {
    setNotice($("notice"), badNameText(identity, "identity") || badNameText(room, "room"), "error");
    return;
  }
  if (!app.preview) {
    setNotice($("notice"), "Turn the camera on first.", "error");
    return;
  }
  $("go-live").disabled = true;
  $("identity").disabled = $("room").disabled = true;
  if (!app.resuming) setNotice($("notice"), "");
  setStatus("connecting", "Connecting");
  // The switch as ticked before going live (the room object of the join
  // result, shown below, says what the room does now).
  const record = $("record").checked;
  try {
    const token = await getToken(identity, room, "host");
    const { client, res } = await connectAndJoin(token, {
      tokenProvider: () => getToken(identity, room, "host"),
      resumeKey: resumeKey("studio", room, identity), reconnectGrace: graceMs(),
    });
    if (app.resuming) {
      stopReconnecting($("notice"));
      if (res.resumed) toast("Reconnected: the stream went on.");
    }
    app.resuming = null;
    app.client = client;
    app.identity = identity;
    app.room = room;
    wire(client);
    showRoom(res.room);
    app.chat.attach(client);
    // Recording first, so the tracks published next are recorded.
    if (record && !(res.room && res.room.recording)) await setRecording(true);
    await client.publish({ stream: app.preview });
    showTransport(client);
    $("end-stream").disabled = false;
    $("invite-btn").disabled = false;
    $("share").hidden = false;
    const link = new URL("/watch?room=" + encodeURIComponent(room), location.href).toString();
    $("watch-link").href = link;
    $("watch-link").textContent = link;
    history.replaceState(null, "", "/studio?identity=" + encodeURIComponent(identity) + "&room=" + encodeURIComponent(room));
    loadInvitations();
    refreshDestinations();
    showRelayState(); // a relay that went on across a reload
    updateRelayButtons();
  } catch (err) {
    app.resuming = null;
    stopReconnecting($("notice"));
    setNotice($("notice"), err.code === ErrorCode.CONFLICT
      ? "Room " + room + " has ended, and this server does not start a new broadcast in an ended room " +
        "(protocol 1.1 broadcasts): choose another room name. (" + describe(err) + ")"
      : describe(err), "error");
    setStatus("disconnected", "Offline");
    if (app.tiles) app.tiles.destroy();
    app.tiles = null;
    if (app.client) app.client.close();
    app.client = null;
    $("go-live").disabled = false;
    $("identity").disabled = $("room").disabled = false;
  }
});

function showRoom(r) {
  if (!r) return;
  if (r.status === "live") setStatus("live", "Live");
  else if (r.status === "idle") setStatus("connecting", "Starting");
  else setStatus(r.status, statusLabel[r.status]);
  showRecording(r);
  if (r.status === "ended" || r.status === "recorded") streamEnded(r);
}

// ---- recording
//
// A host turns recording on with room.record (servers that have it), and
// the room object's `recording` says whether it is on: the switch and the
// REC badge follow it, and viewers see the badge too. A server without
// them answers -32601: the switch says so and stays off.

function showRecording(r) {
  const known = !!r && typeof r.recording === "boolean";
  if (known) $("record").checked = r.recording;
  $("rec-badge").hidden = !(known && r.recording && r.status !== "ended" && r.status !== "recorded");
}

async function setRecording(on) {
  const c = app.client;
  if (!c) return;
  $("record").disabled = true;
  try {
    showRecording(await c.setRecording(on));
    $("record").disabled = false;
  } catch (err) {
    $("record").checked = c.recordingKnown() ? !!c.room.recording : false;
    if (err.code === ErrorCode.METHOD_NOT_FOUND) {
      $("record").closest("label").title = "This server does not let a host switch recording: an operator can (relayd --record, or POST /v1/rooms/{room}/record).";
      toast("Recording: this server does not let a host turn it on (an operator can).", "error");
    } else {
      $("record").disabled = false;
      setNotice($("notice"), describe(err), "error");
    }
  }
}

$("record").addEventListener("change", () => {
  if (app.client && $("ended").hidden) setRecording($("record").checked);
});

function wire(client) {
  // Events of a session the page has let go (ended, then "Go live again")
  // may still arrive (its room.updated or close): they must not touch the
  // new one's page.
  const on = (name, fn) => client.on(name, (e) => { if (app.client === client) fn(e); });
  app.tiles = new Tiles($("stage"), client, {
    emptyText: "Nobody else on stage. Invite a co-host →",
    actions: (p) => (p.role === "cohost"
      ? [el("button", { class: "small danger", "data-remove": p.identity, onclick: () => removeCohost(p.identity) }, "Remove")]
      : []),
  });
  on("room.updated", ({ room }) => showRoom(room));
  // Resumed after a reload, but the media did not come back: the client
  // went on as a fresh session.
  on("resume.failed", ({ reason }) => {
    app.resumeFellBack = reason;
    console.warn("resume: " + reason + "; a fresh session instead");
  });
  wireMutes(client);
  on("reconnecting", ({ attempt, resuming, deadline }) => {
    setStatus("reconnecting", "Reconnecting");
    // 1.1: the server holds the session for its grace: say how long is left.
    if (resuming) showReconnecting($("notice"), deadline);
    else setNotice($("notice"), "Connection lost; reconnecting (attempt " + attempt + "). Viewers see “host reconnecting”.", "info");
  });
  on("reconnected", () => {
    stopReconnecting($("notice"));
    setNotice($("notice"), "");
    // client.room, not the join result: a room.updated (live, once our
    // track is back) may have come while the client published again.
    showRoom(client.room);
  });
  on("disconnected", ({ ended }) => {
    stopReconnecting($("notice"));
    if (ended) streamEnded(client.room);
    else {
      setStatus("disconnected", "Offline");
      setNotice($("notice"), "Disconnected from the server.", "error");
      disableAll();
    }
  });
  on("invitation.updated", ({ invitation }) => {
    if (invitation && invitation.room === app.room) putInvitation(invitation);
  });
  on("participant.joined", ({ participant }) => {
    if (participant.role === "cohost") toast(participant.identity + " joined the stage");
  });
  on("relay.state", (s) => {
    logRelay("st", "state " + s.state + " (" + s.code + ")" + (s.errorCode ? " · error " + s.error + " (" + s.errorCode + ")" : ""));
    showRelayState();
    // The words of a failure need the rooms as they are now.
    if ((client.relay && client.relay.destinations || []).some((d) => d.errorCode)) refreshDestinations();
  });
  on("relay.event", (e) => {
    logRelay("ev", "event " + (e.event || relayEventName(e.code)) + " (" + e.code + ")" + (e.room ? " · room " + e.room : ""));
    if (e.room) lastEvent.set(e.room, (e.event || relayEventName(e.code)) + " (" + e.code + ")");
    showRelayState();
  });
}

function disableAll() {
  for (const id of ["go-live", "end-stream", "invite-btn", "relay-start", "relay-update", "relay-pause", "relay-resume", "relay-stop", "record", "mute-audio", "mute-video"]) $(id).disabled = true;
}

// ---- mute (protocol 1.1 track.mute)
//
// The server tells a 1.1 publisher its own tracks (their ids and muted);
// the buttons mute and unmute them there: viewers and relays get nothing
// of a muted track. An operator may mute them too (the note says so), and
// the host may unmute.

const muteWords = { audio: ["Mute mic", "Unmute mic"], video: ["Turn camera off", "Turn camera on"] };

function showMutes() {
  const c = app.client;
  for (const kind of ["audio", "video"]) {
    const t = c && c.ownTrack(kind);
    const b = $("mute-" + kind);
    b.disabled = !t || !$("ended").hidden;
    b.dataset.muted = String(!!(t && t.muted));
    b.textContent = muteWords[kind][t && t.muted ? 1 : 0];
  }
}

async function toggleMute(kind) {
  const t = app.client && app.client.ownTrack(kind);
  if (!t) return;
  $("mute-" + kind).disabled = true;
  try {
    await app.client.muteTrack(t.id, !t.muted);
    $("mute-note").textContent = "";
  } catch (err) {
    setNotice($("notice"), describe(err), "error");
  }
  showMutes();
}
$("mute-audio").addEventListener("click", () => toggleMute("audio"));
$("mute-video").addEventListener("click", () => toggleMute("video"));

function wireMutes(client) {
  client.on("track.published", showMutes);
  client.on("track.unpublished", showMutes);
  client.on("track.muted", ({ trackId, muted, by }) => {
    const t = client.ownTracks.get(trackId);
    if (t && by === "admin") {
      $("mute-note").textContent = muted
        ? "An operator muted your " + (t.kind === "video" ? "camera" : "microphone") + ": viewers no longer get it. You may turn it back on."
        : "";
    }
    showMutes();
  });
}

// streamEnded shows the end and why (r: the room object, when known).
function streamEnded(r) {
  setStatus("ended", "Ended");
  $("ended").hidden = false;
  $("ended-detail").textContent = endedText(r, true);
  $("rec-badge").hidden = true;
  disableAll();
  if (app.preview) {
    for (const t of app.preview.getTracks()) t.stop();
    app.preview = null;
  }
}

$("end-stream").addEventListener("click", async () => {
  if (!app.client) return;
  $("end-stream").disabled = true;
  try {
    await app.client.stopRoom();
    const r = app.client.room;
    streamEnded(r && r.endReason ? r : { ...r, endReason: "host_left" });
  } catch (err) {
    $("end-stream").disabled = false;
    setNotice($("notice"), describe(err), "error");
  }
});

// Go live again: a new session in the same room (or another name). A
// server that speaks protocol 1.1 starts the room's next broadcast; one
// that does not answers 4009, and the notice says to pick another name.
$("go-live-again").addEventListener("click", async () => {
  const old = app.client;
  app.client = null;
  if (app.tiles) app.tiles.destroy();
  app.tiles = null;
  app.chat.detach();
  app.chat.clear();
  if (old) old.close();
  invitations.clear();
  renderInvitations();
  lastEvent.clear();
  loggedFailures.clear();
  $("relay-log").replaceChildren();
  showRelayState();
  $("ended").hidden = true;
  $("share").hidden = true;
  $("identity").disabled = $("room").disabled = false;
  $("record").disabled = false;
  setNotice($("notice"), "");
  setNotice($("invite-notice"), "");
  setStatus("idle", "Offline");
  await startCamera();
  if (app.preview) $("live-form").requestSubmit();
});

// ---- invitations

const invitations = new Map();
let inviteNoticeFor = ""; // the user the "Invitation sent" notice is about

function putInvitation(inv) {
  invitations.set(inv.id, inv);
  // "Invitation sent to bob" is true only while it is pending: once bob
  // answers (or is removed), the list says what is true.
  if (inv.user === inviteNoticeFor && inv.status !== "pending") {
    inviteNoticeFor = "";
    setNotice($("invite-notice"), "");
  }
  renderInvitations();
  app.chat.refreshActions(inv.user);
}

function renderInvitations() {
  const items = [...invitations.values()].sort((a, b) => String(b.updatedAt || "").localeCompare(String(a.updatedAt || "")));
  $("invitations").replaceChildren(...items.map((inv) => {
    const actions = [];
    if (inv.status === "pending") {
      actions.push(el("button", { class: "small", "data-cancel": inv.id, onclick: () => cancelInvitation(inv.id) }, "Cancel"));
    } else if (inv.status === "accepted") {
      actions.push(el("button", { class: "small danger", "data-remove": inv.user, onclick: () => removeCohost(inv.user) }, "Remove"));
    }
    return el("li", { "data-user": inv.user, "data-status": inv.status, "data-id": inv.id },
      el("span", { class: "who" }, inv.user),
      el("span", { class: "badge " + inv.status }, inv.status),
      ...actions);
  }));
}

async function loadInvitations() {
  try {
    const list = await app.client.listInvitations();
    for (const inv of list) invitations.set(inv.id, inv);
    renderInvitations();
    app.chat.refreshActions();
  } catch (err) {
    inviteNotice(err);
  }
}

function inviteNotice(err) {
  const text = err.code === -32601 ? "This server does not support invitations yet (" + err.code + ")." : describe(err);
  setNotice($("invite-notice"), text, "error");
}

$("invite-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = $("invite-user").value.trim();
  if (!app.client) return;
  if (!NAME_RE.test(user)) {
    setNotice($("invite-notice"), badNameText(user, "user"), "error");
    return;
  }
  if (user === app.identity) {
    setNotice($("invite-notice"), "You are the host of this room: invite someone else.", "error");
    return;
  }
  setNotice($("invite-notice"), "");
  inviteNoticeFor = "";
  try {
    const inv = await app.client.createInvitation(user);
    $("invite-user").value = "";
    if (inv.status === "pending") {
      setNotice($("invite-notice"), "Invitation sent to " + user + ". Their status updates here.", "info");
      inviteNoticeFor = user;
    }
    putInvitation(inv);
  } catch (err) {
    inviteNotice(err);
  }
});

async function cancelInvitation(id) {
  try {
    putInvitation(await app.client.cancelInvitation(id));
  } catch (err) {
    inviteNotice(err);
  }
}

async function removeCohost(user) {
  try {
    await app.client.removeCohost(user);
    toast(user + " was removed from the stage");
  } catch (err) {
    inviteNotice(err);
  }
}

// ---- chat: invite to stage, delete, kick (and ban) from a message

// latestInvitation is user's newest invitation to this room, or null.
function latestInvitation(user) {
  let best = null;
  for (const inv of invitations.values()) {
    if (inv.user !== user || inv.room !== app.room) continue;
    if (!best || String(inv.updatedAt || "") > String(best.updatedAt || "")) best = inv;
  }
  return best;
}

// chatActions are the host's controls under a message from someone else.
function chatActions(m, row) {
  const who = m.from && m.from.identity;
  if (!app.client || !who || who === app.identity) return [];
  const inv = latestInvitation(who);
  const status = inv && (inv.status === "pending" || inv.status === "accepted") ? inv.status : "";
  return [
    el("button", {
      class: "small primary", "data-invite": who, disabled: !!status, onclick: () => inviteFromChat(who),
      title: status === "pending" ? "Waiting for " + who + " to answer" : "Invite " + who + " to co-host",
    }, status === "pending" ? "Invited" : status === "accepted" ? "On stage" : "Invite to stage"),
    el("button", { class: "small", "data-delete": m.id, onclick: () => deleteMessage(m.id) }, "Delete"),
    el("button", { class: "small danger", "data-kick": who, onclick: () => row.replaceChildren(...confirmKick(who)) }, "Kick"),
  ];
}

// confirmKick replaces a message's controls: kick, kick and ban, or cancel.
function confirmKick(who) {
  return [
    el("span", { class: "small confirm" }, "Remove " + who + " from the room?"),
    el("button", { class: "small danger", "data-kick-confirm": who, onclick: () => kick(who, false) }, "Kick"),
    el("button", { class: "small danger", "data-ban": who, onclick: () => kick(who, true), title: "Kept out until the stream ends" }, "Kick and ban"),
    el("button", { class: "small", "data-kick-cancel": who, onclick: () => app.chat.refreshActions(who) }, "Cancel"),
  ];
}

async function inviteFromChat(user) {
  if (!app.client) return;
  app.chat.say("");
  try {
    const inv = await app.client.createInvitation(user);
    putInvitation(inv);
    toast(inv.status === "accepted" ? user + " is already on stage" : "Invitation sent to " + user);
  } catch (err) {
    app.chat.say(describe(err), "error");
  }
}

async function deleteMessage(id) {
  if (!app.client) return;
  app.chat.say("");
  try {
    await app.client.deleteChat(id); // everyone else gets chat.deleted
    app.chat.remove(id);
  } catch (err) {
    if (err.code === 4004) app.chat.remove(id); // already gone
    else app.chat.say(describe(err), "error");
  }
}

async function kick(who, ban) {
  if (!app.client) return;
  app.chat.say("");
  try {
    await app.client.kick(who, { ban });
    toast(ban ? who + " was removed and banned until the stream ends" : who + " was removed from the room");
  } catch (err) {
    app.chat.say(err.code === 4004 ? who + " is no longer in the room." : describe(err), "error");
  }
  app.chat.refreshActions(who);
}

// ---- relay

const picked = new Set(); // destination room names
const extra = new Set(); // rooms added by name
const lastEvent = new Map(); // room -> last relay event
const loggedFailures = new Set(); // "room code" of the failures said in the log
let knownRooms = [];
let roomsListed = false; // knownRooms comes from the server (--dev): a room missing from it does not exist

async function refreshDestinations() {
  try {
    const rooms = await fetchRooms();
    if (rooms) {
      knownRooms = rooms;
      roomsListed = true;
    }
  } catch {
    // keep the last list
  }
  renderDestinations();
  showRelayState();
}
setInterval(() => {
  if (app.client) refreshDestinations();
}, 3000);

function renderDestinations() {
  const own = app.room || $("room").value.trim();
  const names = new Map();
  for (const r of knownRooms) {
    if (r.name !== own && r.status !== "ended" && r.status !== "recorded") names.set(r.name, r);
  }
  for (const n of [...extra, ...picked]) if (n !== own && !names.has(n)) names.set(n, { name: n, status: "", host: "" });
  const full = picked.size >= MAX_DESTINATIONS;
  const items = [...names.values()].sort((a, b) => a.name.localeCompare(b.name)).map((r) => {
    const box = el("input", { type: "checkbox", value: r.name, checked: picked.has(r.name), disabled: full && !picked.has(r.name) });
    box.addEventListener("change", () => {
      if (box.checked) picked.add(r.name);
      else picked.delete(r.name);
      renderDestinations();
    });
    return el("li", { "data-room": r.name },
      el("label", {}, box, el("span", { class: "who" }, r.name), r.host ? el("span", { class: "muted small" }, "host " + r.host) : null),
      r.status ? el("span", { class: "badge " + r.status }, statusLabel[r.status] || r.status) : null);
  });
  if (items.length === 0) items.push(el("li", { class: "muted small" }, "No other rooms yet. Add one by name."));
  $("dest-list").replaceChildren(...items);
  updateRelayButtons();
}

$("dest-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = $("dest-custom").value.trim();
  if (!NAME_RE.test(name)) {
    logRelay("err", "a room name is 1-128 of letters, digits and _ . : @ -");
    return;
  }
  extra.add(name);
  if (picked.size < MAX_DESTINATIONS) picked.add(name);
  $("dest-custom").value = "";
  renderDestinations();
});

function updateRelayButtons() {
  const live = !!app.client && $("ended").hidden;
  const r = app.client && app.client.relay;
  const running = !!r && r.state !== "idle";
  $("relay-start").disabled = !live || running || picked.size === 0;
  $("relay-update").disabled = !live || !running;
  $("relay-pause").disabled = !live || !running || !!r.paused;
  $("relay-resume").disabled = !live || !running || !r.paused;
  $("relay-stop").disabled = !live || !running;
}

async function destinations() {
  const out = [];
  for (const room of picked) {
    const info = knownRooms.find((r) => r.name === room);
    const role = info && info.host === app.identity ? "host" : "viewer";
    out.push({ room, token: await getDestToken(room, role) });
  }
  return out;
}

function getDestToken(room, role) {
  // The relayed stream takes the host's identity in the destination.
  return mintToken(app.identity, room, role);
}

async function relayCall(name, fn) {
  try {
    const relay = await fn();
    const n = relay && relay.destinations ? relay.destinations.length : 0;
    logRelay("st", name + " → " + relay.state + " (" + relay.code + ")" + (relay.paused ? " · paused" : "") + " · " + n + " destination" + (n === 1 ? "" : "s"));
  } catch (err) {
    logRelay("err", describe(err));
  }
  showRelayState();
}

$("relay-start").addEventListener("click", async () => {
  loggedFailures.clear();
  relayCall("relay.start", async () => app.client.startRelay(await destinations()));
});
$("relay-update").addEventListener("click", async () => relayCall("relay.update", async () => app.client.updateRelay(await destinations())));
$("relay-pause").addEventListener("click", () => relayCall("relay.pause", () => app.client.pauseRelay()));
$("relay-resume").addEventListener("click", () => relayCall("relay.resume", () => app.client.resumeRelay()));
$("relay-stop").addEventListener("click", () => relayCall("relay.stop", () => app.client.stopRelay()));

function showRelayState() {
  const r = app.client && app.client.relay;
  if (!r) {
    setBadge($("relay-state"), "idle", "idle");
    $("relay-kv").textContent = "";
    $("relay-dests").hidden = true;
    updateRelayButtons();
    return;
  }
  setBadge($("relay-state"), r.state, r.state + " (" + r.code + ")");
  $("relay-kv").replaceChildren(
    "error ", el("b", {}, (r.error || relayErrorName(r.errorCode) || "none") + " (" + (r.errorCode ?? 0) + ")"),
    r.paused ? " · paused" : "");
  const ctx = { rooms: roomsListed ? new Map(knownRooms.map((x) => [x.name, x])) : null };
  // A destination's row, and under it, across the table, why it is not
  // running (the server gives only the code: the words come from
  // relayReason with the rooms this page knows).
  const rows = (r.destinations || []).flatMap((d) => {
    const why = relayReason(d, { ...ctx, identity: d.identity || app.identity });
    if (why && d.errorCode && !loggedFailures.has(d.room + " " + d.errorCode)) {
      loggedFailures.add(d.room + " " + d.errorCode);
      logRelay("err", "room " + d.room + ": " + (d.error || relayErrorName(d.errorCode)) + " (" + d.errorCode + "): " + why);
    }
    const row = el("tr", { "data-room": d.room, "data-state": d.state, "data-error-code": d.errorCode ?? 0, class: why ? "has-reason" : null },
      el("td", {}, d.room),
      el("td", {}, el("span", { class: "badge " + d.state }, (d.state || relayStateName(d.code)) + " (" + d.code + ")")),
      el("td", {}, (d.error || relayErrorName(d.errorCode) || "none") + " (" + (d.errorCode ?? 0) + ")"),
      el("td", { class: "muted" }, lastEvent.get(d.room) || ""));
    if (!why) return [row];
    return [row, el("tr", { class: "reason-row", "data-reason-for": d.room }, el("td", { colspan: 4 }, el("div", { class: "reason" }, why)))];
  });
  $("relay-dests").tBodies[0].replaceChildren(...rows);
  $("relay-dests").hidden = rows.length === 0;
  updateRelayButtons();
}

function logRelay(kind, text) {
  const line = el("div", { class: kind }, el("span", { class: "t" }, new Date().toLocaleTimeString()), text);
  $("relay-log").append(line);
  $("relay-log").scrollTop = $("relay-log").scrollHeight;
}

renderDestinations();

// showLayers says which simulcast layers the camera is sent in, and which
// are off because no viewer needs them (publisher.layers), every 2 s.
function showLayers(client) {
  const timer = setInterval(async () => {
    if (app.client !== client) return clearInterval(timer);
    const pc = client._pub;
    const sender = pc && pc.getSenders().find((s) => s.track && s.track.kind === "video");
    if (!sender) return;
    const sizes = new Map();
    const report = await pc.getStats().catch(() => null);
    if (report) report.forEach((s) => { if (s.type === "outbound-rtp" && s.kind === "video" && s.rid) sizes.set(s.rid, s); });
    const list = (sender.getParameters().encodings || []).map((e) => ({
      rid: e.rid || "", active: e.active !== false, width: (sizes.get(e.rid) || {}).frameWidth || 0, height: (sizes.get(e.rid) || {}).frameHeight || 0,
    }));
    const text = layersText(list);
    $("layers").textContent = text;
    $("layers").hidden = !text;
    $("layers").dataset.layers = list.map((l) => l.rid + (l.active ? "" : "-off")).join(" ");
  }, 2000);
}

// showTransport puts how the camera's media leaves (UDP, TCP, TURN/UDP,
// TURN/TCP, TURN/TLS: the publisher PC's selected candidate pair) on the
// status badge, as debug info: its tooltip and data-transport.
function showTransport(client) {
  showLayers(client);
  const timer = setInterval(async () => {
    if (app.client !== client) return clearInterval(timer);
    const t = await transportOf(client, "publisher");
    if (!t) return;
    $("status").dataset.transport = t;
    $("status").title = "Your media goes over " + transportLabel[t];
  }, 2000);
}
