// Lobby: the rooms of this server (from the dev endpoint), live ones first.
import { $, el, fetchRooms, markNav, setNotice, statusBadge } from "/static/app.js";

markNav();

const order = { live: 0, waiting_reconnect: 1, idle: 2 };

function initials(name) {
  const parts = String(name).split(/[^A-Za-z0-9]+/).filter(Boolean);
  return (parts.length > 1 ? parts[0][0] + parts[1][0] : String(name).slice(0, 2)).toUpperCase();
}

function card(room) {
  const viewers = Number(room.viewers) || 0;
  const href = "/watch?room=" + encodeURIComponent(room.name);
  return el("article", { class: "card", "data-room": room.name, "data-status": room.status },
    el("div", { class: "thumb" },
      statusBadge(room.status),
      room.recording === true ? el("span", { class: "badge rec", title: "Being recorded" }, "REC") : null,
      initials(room.title || room.name),
      el("span", { class: "viewers", "data-viewers": viewers }, viewers === 1 ? "1 watching" : viewers + " watching")),
    el("div", { class: "body" },
      el("div", { class: "title" }, room.title || room.name),
      el("div", { class: "muted small" }, "Room ", el("b", {}, room.name), " · host ", el("b", {}, room.host || "?")),
      el("div", { class: "actions" },
        el("a", { class: "button primary", href }, "Watch"),
        el("a", { class: "button", href: "/studio?room=" + encodeURIComponent(room.name) + "&identity=" + encodeURIComponent(room.host || "") }, "Studio"))));
}

async function refresh() {
  let rooms;
  try {
    rooms = await fetchRooms();
  } catch (err) {
    setNotice($("notice"), "Could not load rooms: " + err.message, "error");
    return;
  }
  if (rooms === null) {
    setNotice($("notice"), "The lobby lists rooms when relayd runs with --dev (it reads /dev/rooms). You can still open a room by name below.", "info");
    $("rooms").replaceChildren();
    return;
  }
  setNotice($("notice"), "");
  const shown = rooms
    .filter((r) => r && r.status !== "ended" && r.status !== "recorded")
    .sort((a, b) => (order[a.status] ?? 9) - (order[b.status] ?? 9) || (Number(b.viewers) || 0) - (Number(a.viewers) || 0) || String(a.name).localeCompare(String(b.name)));
  if (shown.length === 0) {
    $("rooms").replaceChildren(el("div", { class: "empty" }, "Nobody is live right now. Start a room with “Go live” below."));
  } else {
    $("rooms").replaceChildren(...shown.map(card));
  }
  $("updated").textContent = "Updated " + new Date().toLocaleTimeString();
}

refresh();
setInterval(refresh, 2000);
