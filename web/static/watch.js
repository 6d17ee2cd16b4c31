// Viewer: watch one room; a tile per host, co-host and relayed host.
import { $, NAME_RE, Tiles, connectAndJoin, describe, getToken, markNav, param, rand, setBadge, setNotice, statusLabel } from "/static/app.js";

markNav();

const room = param("room");
const identity = param("identity", "viewer-" + rand());
const app = (window.app = { client: null, tiles: null, room, identity });

if (!room || !NAME_RE.test(room)) {
  $("pick").hidden = false;
  $("room-input").focus();
} else {
  $("viewer").hidden = false;
  $("room-title").textContent = room;
  document.title = "relayd · " + room;
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
      client.on("reconnecting", ({ attempt }) => setNotice($("notice"), "Connection lost; reconnecting (attempt " + attempt + ")…", "info"));
      client.on("reconnected", () => setNotice($("notice"), ""));
      client.on("disconnected", ({ ended: isEnded, reason }) => {
        if (isEnded || (client.room && client.room.status === "ended")) ended("The host has ended this stream.");
        else {
          setBadge($("room-status"), "disconnected", "Disconnected");
          setNotice($("notice"), "Disconnected" + (reason ? ": " + reason : "") + ". Reload to try again.", "error");
        }
      });
      showRoom(res.room);
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
      setBadge($("room-status"), "disconnected", "Error");
      setNotice($("notice"), describe(err), "error");
      return;
    }
  }
}
