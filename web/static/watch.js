// Viewer: watch one room; a tile per host, co-host and relayed host; the
// room's chat beside the video. When the host invites this viewer (from
// the chat, say), the invitation shows as a banner at once: accepting makes
// the viewer a co-host in place, and "Go on stage" publishes camera and
// microphone. A kicked viewer is told so, and the page does not reconnect.
import {
  $, el, NAME_RE, Tiles, attachLocal, connectAndJoin, describe, getToken, markNav, param, rand, setBadge,
  setNotice, statusLabel, toast,
} from "/static/app.js";
import { chatPanel } from "/static/chat.js";

markNav();

const room = param("room");
const identity = param("identity", "viewer-" + rand());
const app = (window.app = { client: null, tiles: null, chat: null, room, identity, invitations: new Map(), onStage: false });

if (!room || !NAME_RE.test(room)) {
  $("pick").hidden = false;
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

function showRoom(r) {
  if (!r) return;
  setBadge($("room-status"), r.status, statusLabel[r.status]);
  $("room-host").textContent = r.host ? "Host: " + r.host : "";
  const v = Number(r.viewers);
  $("room-viewers").textContent = Number.isFinite(v) ? (v === 1 ? "1 watching" : v + " watching") : "";
  if (r.title) $("room-title").textContent = r.title;
  if (r.status === "waiting_reconnect") {
    setNotice($("notice"), "The host lost the connection. Waiting for them to come back…", "info");
    waiting = true;
  } else if (waiting) {
    setNotice($("notice"), "");
    waiting = false;
  }
  if (r.status === "ended") ended("The host has ended this stream.");
}

function ended(detail) {
  $("ended").hidden = false;
  $("ended-detail").textContent = detail;
  setBadge($("room-status"), "ended", "Ended");
  clearInvitations();
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
  for (;;) {
    try {
      const { client, res } = await connectAndJoin(token);
      app.client = client;
      app.tiles = new Tiles($("tiles"), client, { emptyText: "Waiting for the host's video…" });
      client.on("room.updated", ({ room: r }) => showRoom(r));
      client.on("invitation.updated", ({ invitation }) => putInvitation(invitation));
      client.on("role.changed", ({ role, previous }) => roleChanged(role, previous));
      client.on("kicked", () => kicked("The host removed you from this stream."));
      client.on("reconnecting", ({ attempt }) => setNotice($("notice"), "Connection lost; reconnecting (attempt " + attempt + ")…", "info"));
      client.on("reconnected", () => {
        setNotice($("notice"), "");
        loadInvitations();
      });
      client.on("disconnected", ({ ended: isEnded, kicked: wasKicked, reason }) => {
        if (wasKicked) return; // said by "kicked"
        offStage();
        if (isEnded || (client.room && client.room.status === "ended")) ended("The host has ended this stream.");
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
      if (err.code === 4004) {
        // Not created yet: wait for the host.
        setBadge($("room-status"), "idle", "Not started");
        setNotice($("notice"), "Room “" + room + "” does not exist yet. Waiting for the host to start it…", "info");
        await new Promise((r) => setTimeout(r, 3000));
        continue;
      }
      if (err.code === 4009) {
        ended("This stream has ended.");
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
