// Human words for what the server says in codes: why a room ended, why a
// relay destination failed, an error message without its repeats. Pure
// functions (no DOM, no network), table-tested in web/words_test.go.

// ---- why a room ended (the room object's endReason)

const endedForViewers = {
  host_left: "The host ended the stream.",
  host_timeout: "The host lost connection and did not come back in time.",
  stopped_by_admin: "The stream was stopped by an operator.",
  server_shutdown: "The stream ended because of a server restart.",
  node_lost: "The stream ended: the server node running it was lost (node lost).",
};

const endedForHost = {
  host_left: "You ended the stream. Viewers have been told.",
  host_timeout: "You lost connection for longer than the server waits: the stream ended.",
  stopped_by_admin: "An operator stopped your stream.",
  server_shutdown: "The stream ended because of a server restart.",
  node_lost: "The stream ended: the server node running it was lost (node lost).",
};

/**
 * endedText says why a room ended, for its viewers (or, with
 * forHost, for its host), from the room's endReason. A room without one
 * (a server that does not say, or a reason this page does not know) gets a
 * plain sentence.
 */
export function endedText(room, forHost = false) {
  const reason = room && room.endReason;
  const table = forHost ? endedForHost : endedForViewers;
  if (reason && Object.hasOwn(table, reason)) return table[reason];
  return forHost ? "The stream has ended. Viewers have been told." : "This stream has ended.";
}

// ---- error messages

/**
 * cleanMessage drops from a server's message the code's word where the
 * message repeats it ("invalid params: user: ...: invalid params" with
 * word "invalid params" gives "user: ..."), so a line that shows the word
 * once already does not say it three times; a message that ends as it
 * begins ("stage full: ...: stage full") loses its end.
 */
export function cleanMessage(message, word) {
  let m = String(message || "").trim();
  if (!word) return m;
  const head = word + ":";
  const tail = ": " + word;
  for (let changed = true; changed;) {
    changed = false;
    if (m.toLowerCase().startsWith(head.toLowerCase())) {
      m = m.slice(head.length).trim();
      changed = true;
    }
    if (m.toLowerCase().endsWith(tail.toLowerCase())) {
      m = m.slice(0, m.length - tail.length).trim();
      changed = true;
    }
  }
  const i = m.indexOf(": ");
  if (i > 0 && m.length > 2 * (i + 2) && m.endsWith(": " + m.slice(0, i))) m = m.slice(0, m.length - i - 2);
  return m.toLowerCase() === word.toLowerCase() ? "" : m;
}

// ---- why a relay destination failed

// The words of the relay errors the server sends without a room to blame
// (docs/protocol.md §8.7; most are Agora's and unused by relayd).
const relayErrorWords = {
  1: "the server answered with an error",
  2: "the server did not answer",
  3: "no resource available on the server",
  4: "could not join the source room",
  6: "no packets from the source",
  7: "could not send packets to the destination",
  9: "internal error on the server",
  10: "the source token has expired",
};

/**
 * relayReason says in words why a relay destination is not running, from
 * its error code and what the page knows. The server sends only the code:
 * failed_join_dest (5) covers a missing room, an ended room, an identity
 * without an accepted invitation there and a refused token; the page tells
 * them apart with the room list (when it has one) and the identity the
 * stream takes there.
 *
 *   dest: a destination of the relay object ({room, state, errorCode, left?})
 *   ctx.rooms: Map room name -> room object ({host, status}), or null when
 *     the page has no list (not --dev)
 *   ctx.identity: the identity the stream takes in that room
 *
 * Returns "" when the destination is fine.
 */
export function relayReason(dest, { rooms = null, identity = "" } = {}) {
  if (!dest) return "";
  const room = dest.room;
  const info = rooms ? rooms.get(room) : undefined;
  const ended = info && (info.status === "ended" || info.status === "recorded");
  if (dest.left && dest.state !== "failure") {
    return ended ? "room " + room + " ended: the relay left it" : "the relay left room " + room;
  }
  switch (dest.errorCode) {
    case 0:
    case undefined:
    case null:
      return "";
    case 5: // failed_join_dest
      if (rooms && !info) return "no such room: nobody has started room " + room;
      if (ended) return "room " + room + " has ended";
      if (info && info.host && identity && info.host === identity) {
        return "the token was refused (not a valid token for room " + room + ")";
      }
      if (info) {
        const host = info.host ? info.host + ", the host of " + room + "," : "the host of " + room;
        return "no accepted invitation: " + host + " must invite " + (identity || "you") + ", who must accept";
      }
      return "could not join: room " + room + " is missing or ended, " + (identity || "you") +
        " has no accepted invitation there, or the token was refused";
    case 8: // server_connection_lost
      return "the server node of room " + room + " was lost";
    case 11: // dest_token_expired
      return "the token for room " + room + " has expired: start again with a fresh one";
  }
  return relayErrorWords[dest.errorCode] || "error " + dest.errorCode;
}

// ---- a track paused in a room (track.stream, protocol 1.1)

const pausedWords = {
  relay_paused: "Paused by the host",
  publisher_reconnecting: "Reconnecting…",
  bandwidth: "Low bandwidth: video paused",
};

// ---- a muted track (track.mute, protocol 1.1)

/** mutedText says that a track of kind is muted. */
export function mutedText(kind) {
  return kind === "video" ? "Camera off" : "Mic off";
}

/** pausedText says why a received track is paused. */
export function pausedText(reason) {
  return (reason && Object.hasOwn(pausedWords, reason) && pausedWords[reason]) || "Paused";
}

// ---- reconnecting (protocol 1.1 resume)

/**
 * reconnectingText says that the page is getting its session back, with
 * the seconds the server still holds it (ms; 0 or less: not known, or
 * over, when only "Reconnecting…" is true).
 */
export function reconnectingText(msLeft) {
  const s = Math.ceil((Number(msLeft) || 0) / 1000);
  return s > 0 ? "Reconnecting… (" + s + " s left)" : "Reconnecting…";
}

// ---- what the studio sends (simulcast, protocol 1.1)

/**
 * layersText says which layers the camera is sent in: list is one
 * {rid, active, width, height} per encoding (the sender's, with getStats'
 * sizes); "" for one plain layer.
 */
export function layersText(list) {
  if (!Array.isArray(list) || list.length < 2) return "";
  const part = (l) => (l.active === false ? l.rid + " off" : l.rid + (l.width > 0 ? " " + l.width + "×" + l.height : ""));
  const off = list.filter((l) => l.active === false).length;
  return "Sending " + list.length + " layers: " + list.map(part).join(" · ") + (off ? " (no viewer needs what is off)" : "");
}

// ---- names

/** The contract's alphabet for identities and room names. */
export const NAME_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** badNameText says what is wrong with a room name, "" when it is fine. */
export function badNameText(name, what = "room") {
  if (NAME_RE.test(name)) return "";
  if (!name) return "No " + what + " name given.";
  if (name.length > 128) return "A " + what + " name has at most 128 characters.";
  return "“" + name + "” is not a valid " + what + " name: use only letters, digits and _ . : @ - (no spaces).";
}
