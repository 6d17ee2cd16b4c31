// Co-host: your invitations (a user session, live through
// invitation.updated), accept or decline, join the stage, leave it; the
// room's chat beside the stage.
import {
  $, el, NAME_RE, Tiles, attachLocal, connectAndJoin, describe, getToken, markNav, param,
  setBadge, setNotice, statusLabel, toast, roleLabel,
} from "/static/app.js";
import { chatPanel } from "/static/chat.js";
import { endedText } from "/static/words.js";

markNav();

const app = (window.app = { inbox: null, client: null, tiles: null, chat: null, identity: "" });
app.chat = chatPanel({ idleText: "The chat opens when you join a stage." });
const invitations = new Map();

$("identity").value = param("identity", "carol");

$("who-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  openInbox();
});
if (param("identity")) openInbox();

async function openInbox() {
  const identity = $("identity").value.trim();
  if (!NAME_RE.test(identity)) {
    setNotice($("notice"), "An identity is 1-128 of letters, digits and _ . : @ -", "error");
    return;
  }
  if (app.inbox) app.inbox.close();
  app.identity = identity;
  $("open-inbox").disabled = true;
  setNotice($("notice"), "");
  setBadge($("status"), "connecting", "Connecting");
  try {
    // A token without a room: a user session, invitations only.
    const token = await getToken(identity, "", "");
    const { client } = await connectAndJoin(token, { tokenProvider: () => getToken(identity, "", "") });
    app.inbox = client;
    setBadge($("status"), "connected", "Signed in as " + identity);
    history.replaceState(null, "", "/cohost?identity=" + encodeURIComponent(identity));
    client.on("invitation.updated", ({ invitation }) => {
      if (!invitation || invitation.user !== identity) return;
      const before = invitations.get(invitation.id);
      invitations.set(invitation.id, invitation);
      if (!before && invitation.status === "pending") toast(invitation.host + " invites you to co-host " + invitation.room);
      if (before && before.status !== invitation.status && ["cancelled", "expired", "removed"].includes(invitation.status)) {
        toast("Invitation to " + invitation.room + ": " + invitation.status, "error");
      }
      render();
    });
    client.on("disconnected", () => setBadge($("status"), "disconnected", "Offline"));
    $("inbox").hidden = false;
    try {
      for (const inv of await client.listInvitations()) invitations.set(inv.id, inv);
    } catch (err) {
      setNotice($("notice"), err.code === -32601 ? "This server does not support invitations yet (" + err.code + ")." : describe(err), "error");
    }
    render();
  } catch (err) {
    setBadge($("status"), "disconnected", "Offline");
    setNotice($("notice"), describe(err), "error");
  } finally {
    $("open-inbox").disabled = false;
  }
}

function render() {
  const shown = [...invitations.values()]
    .filter((i) => i.status === "pending" || i.status === "accepted")
    .sort((a, b) => String(b.updatedAt || "").localeCompare(String(a.updatedAt || "")));
  $("no-invites").hidden = shown.length > 0;
  $("banners").replaceChildren(...shown.map(banner));
}

function banner(inv) {
  const inRoom = app.client && app.client.room && app.client.room.name === inv.room;
  const onStage = inRoom && app.client.participant && app.client.participant.role === "cohost";
  if (inv.status === "pending") {
    const mins = inv.expiresAt ? Math.max(0, Math.round((Date.parse(inv.expiresAt) - Date.now()) / 60000)) : null;
    return el("div", { class: "banner", "data-invitation": inv.id, "data-status": inv.status, "data-room": inv.room },
      el("div", { class: "text" },
        el("strong", {}, inv.host), " invites you to co-host ", el("strong", {}, inv.room),
        mins !== null ? el("div", { class: "muted small" }, "Expires in " + mins + " min") : null),
      el("button", { class: "primary", "data-accept": inv.id, onclick: () => answer(inv, true) }, "Accept"),
      el("button", { "data-reject": inv.id, onclick: () => answer(inv, false) }, "Decline"));
  }
  return el("div", { class: "banner accepted", "data-invitation": inv.id, "data-status": inv.status, "data-room": inv.room },
    el("div", { class: "text" }, "You are a co-host of ", el("strong", {}, inv.room), " (host ", el("strong", {}, inv.host), ")"),
    onStage
      ? el("span", { class: "badge accepted" }, "On stage")
      : el("button", { class: "primary", "data-join": inv.room, onclick: () => joinStage(inv.room) }, inRoom ? "Rejoin the stage" : "Join stage"));
}

async function answer(inv, accept) {
  try {
    const res = accept ? await app.inbox.acceptInvitation(inv.id) : await app.inbox.rejectInvitation(inv.id);
    invitations.set(res.id, res);
    render();
  } catch (err) {
    setNotice($("notice"), describe(err), "error");
  }
}

// ---- the stage

async function joinStage(room) {
  if (app.client) await leaveRoom();
  setNotice($("notice"), "");
  try {
    // A viewer token: the accepted invitation makes us a co-host at join.
    const token = await getToken(app.identity, room, "viewer");
    const { client, res } = await connectAndJoin(token, { tokenProvider: () => getToken(app.identity, room, "viewer") });
    app.client = client;
    $("stage-panel").hidden = false;
    $("stage-title").textContent = "Room " + room;
    $("ended").hidden = true;
    $("kicked").hidden = true;
    app.chat.idleText = "The chat opens when you join a stage.";
    app.tiles = new Tiles($("tiles"), client, { emptyText: "Waiting for the host's video…" });
    client.on("room.updated", ({ room: r }) => showRoomStatus(r));
    client.on("role.changed", ({ role, previous }) => {
      showRole(role);
      render();
      if (role === "cohost") publish();
      if (previous === "cohost" && role === "viewer") {
        $("self-wrap").hidden = true;
        toast("You are off the stage; still watching as a viewer.");
      }
    });
    client.on("kicked", () => {
      $("kicked").hidden = false;
      $("self-wrap").hidden = true;
      showRole("viewer");
      setBadge($("room-status"), "disconnected", "Removed");
      app.chat.closed("You were removed from this room.");
    });
    client.on("disconnected", ({ ended }) => {
      if (ended) showEnded(client.room);
      $("leave-stage").disabled = true;
    });
    showRoomStatus(res.room);
    app.chat.attach(client);
    showRole(res.participant.role);
    if (res.participant.role === "cohost") await publish();
    else setNotice($("notice"), "You joined " + room + " as a viewer: the invitation is no longer accepted.", "info");
    render();
  } catch (err) {
    setNotice($("notice"), describe(err), "error");
  }
}

async function publish() {
  try {
    const stream = await app.client.publish();
    attachLocal($("self"), stream);
    $("self-wrap").hidden = false;
  } catch (err) {
    setNotice($("notice"), describe(err), "error");
  }
}

function showRole(role) {
  setBadge($("role"), role, roleLabel[role] || role);
  $("leave-stage").disabled = role !== "cohost";
}

function showRoomStatus(r) {
  if (!r) return;
  setBadge($("room-status"), r.status, statusLabel[r.status]);
  if (r.status === "ended" || r.status === "recorded") showEnded(r);
}

// showEnded says the stream ended, and why (the room's endReason).
function showEnded(r) {
  $("ended").hidden = false;
  $("ended-detail").textContent = endedText(r);
  $("self-wrap").hidden = true;
}

$("leave-stage").addEventListener("click", async () => {
  if (!app.client) return;
  $("leave-stage").disabled = true;
  try {
    await app.client.leaveStage();
    $("self-wrap").hidden = true;
    showRole("viewer");
  } catch (err) {
    $("leave-stage").disabled = false;
    setNotice($("notice"), describe(err), "error");
  }
});

async function leaveRoom() {
  const c = app.client;
  app.client = null;
  app.chat.detach();
  if (app.tiles) app.tiles.destroy();
  app.tiles = null;
  $("self").srcObject = null;
  $("self-wrap").hidden = true;
  $("stage-panel").hidden = true;
  if (c) await c.leave();
  render();
}

$("leave-room").addEventListener("click", leaveRoom);
