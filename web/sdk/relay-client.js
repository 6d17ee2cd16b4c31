// relay-client.js: the browser client of relayd's wire protocol
// (docs/protocol.md, versions 1.0 and 1.1). A dependency-free ES module;
// types in relay-client.d.ts.
//
//   import { RelayClient } from "/sdk/relay-client.js";
//   const client = await RelayClient.connect("ws://127.0.0.1:8800/v1/ws", token);
//   client.on("track.subscribed", ({ participant, track, stream }) => { ... });
//   await client.join();
//   await client.publish();           // camera + microphone (host, co-host)
//
// Two PeerConnections, as in LiveKit and ion-sfu: the publisher PC (the
// client offers, the server answers) carries what the client sends; the
// subscriber PC (the server offers with an `offer` REQUEST, the client's
// result is its answer) carries what it receives. `trickle`'s target always
// names the client's PC. Candidates that arrive before a remote description
// are queued; local candidates are sent only after the description they
// belong to.
//
// Remote tracks map to the room's tracks through the subscriber SDP: each
// m-section carries `a=msid:<publisher identity> <track id>`, so the client
// reads the msid of the transceiver's mid and finds the room's track object
// (from join and track.published) by its id. ontrack's streams[0].id is the
// publisher identity too; the mid/msid lookup also works where a browser
// renames the MediaStreamTrack.
//
// 1.1 sessions (docs/protocol.md §8.10, §8.12, §8.13): camera video is
// sent as simulcast (relay-policy.js says which layers) and
// publisher.layers switches layers off and on at the sender; a received
// track's layer (track.layer), pause (track.stream) and settings
// (setTrackSettings) are kept per track. A lost socket is resumed with the
// resume token (the PeerConnections are kept; the publisher restarts ICE),
// a failed PeerConnection or a network change restarts ICE, and with
// options.resumeKey the session survives a page reload (sessionStorage).

import { DEFAULT_GRACE, graceLeft, reconnectDelay } from "./relay-policy.js";
import { ResumeMethods } from "./relay-resume.js";
import { SimulcastMethods } from "./relay-simulcast.js";

/** JSON-RPC and relayd error codes (PROTOCOL.md "Errors"), plus the client's own. */
export const ErrorCode = Object.freeze({
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  UNAUTHENTICATED: 4001,
  FORBIDDEN: 4003,
  NOT_FOUND: 4004,
  CONFLICT: 4009,
  TOO_MANY: 4013,
  RATE_LIMITED: 4029,
  // Client-side codes (never sent by a server).
  CLIENT_CLOSED: -1, // the socket is not open, or closed before the answer
  CLIENT_TIMEOUT: -2, // no answer in time
  CLIENT_STATE: -3, // the call does not fit the client's state (publish before join, ...)
  CLIENT_MEDIA: -4, // getUserMedia or a PeerConnection failed
});

const errorWords = {
  [-32700]: "parse error",
  [-32600]: "invalid request",
  [-32601]: "method not found",
  [-32602]: "invalid params",
  [-32603]: "internal error",
  4001: "unauthenticated",
  4003: "forbidden",
  4004: "not found",
  4009: "conflict",
  4013: "too many",
  4029: "rate limited",
  [-1]: "connection closed",
  [-2]: "timeout",
  [-3]: "invalid client state",
  [-4]: "media error",
};

/** The word of an error code ("forbidden" for 4003). */
export function errorName(code) {
  return errorWords[code] || "error " + code;
}

/**
 * RelayError is every failure the client reports: a server's JSON-RPC error
 * (code, message, data), or one of the client's own (negative codes).
 */
export class RelayError extends Error {
  constructor(code, message, { method, data, cause } = {}) {
    const prefix = method ? method + ": " : "";
    super(prefix + (message || errorName(code)) + " (" + code + ")", cause ? { cause } : undefined);
    this.name = "RelayError";
    /** The numeric code: JSON-RPC (-327xx), relayd (4xxx) or client (-1..-4). */
    this.code = code;
    /** The server's message, without the method prefix. */
    this.serverMessage = message || "";
    /** The method whose call failed, when there is one. */
    this.method = method;
    /** The error's data member, if the server sent one. */
    this.data = data;
  }
  /** The word of the code ("forbidden"). */
  get codeName() {
    return errorName(this.code);
  }
}

/** ConnectionError: the WebSocket closed (or never opened). code is the close code. */
export class ConnectionError extends RelayError {
  constructor(closeCode, reason, opts) {
    super(ErrorCode.CLIENT_CLOSED, "connection closed (" + closeCode + (reason ? " " + reason : "") + ")", opts);
    this.name = "ConnectionError";
    /** The WebSocket close code (1000 normal, 1006 abnormal or refused, 1009 too big, ...). */
    this.closeCode = closeCode;
    this.reason = reason || "";
  }
}

/** Why a room ended (docs/protocol.md §8.5): the room object's endReason. */
export const EndReason = Object.freeze({
  HOST_LEFT: "host_left", // the host's room.stop
  HOST_TIMEOUT: "host_timeout", // the host stayed away longer than the reconnect grace
  STOPPED_BY_ADMIN: "stopped_by_admin", // an operator (HTTP API)
  SERVER_SHUTDOWN: "server_shutdown", // the server stopped, or restarted
  NODE_LOST: "node_lost", // cluster: the room's node died
});

// ---- relay tables (PROTOCOL.md "Relay"; the codes of Agora's channel media relay)

/** Relay states and their codes. */
export const RelayState = Object.freeze({ idle: 0, connecting: 1, running: 2, failure: 3 });

/** Relay errors and their codes. */
export const RelayErrorCode = Object.freeze({
  none: 0,
  server_error_response: 1,
  server_no_response: 2,
  no_resource_available: 3,
  failed_join_src: 4,
  failed_join_dest: 5,
  failed_packet_received_from_src: 6,
  failed_packet_sent_to_dest: 7,
  server_connection_lost: 8,
  internal_error: 9,
  src_token_expired: 10,
  dest_token_expired: 11,
});

/** Relay events and their codes. */
export const RelayEvent = Object.freeze({
  disconnect: 0,
  connected: 1,
  joined_src_channel: 2,
  joined_dest_channel: 3,
  sent_to_dest_channel: 4,
  received_video_packet_from_src: 5,
  received_audio_packet_from_src: 6,
  update_dest_channel: 7,
  update_dest_channel_refused: 8,
  update_dest_channel_not_change: 9,
  update_dest_channel_is_nil: 10,
  video_profile_update: 11,
  pause_send_packet_to_dest_channel_success: 12,
  pause_send_packet_to_dest_channel_failed: 13,
  resume_send_packet_to_dest_channel_success: 14,
  resume_send_packet_to_dest_channel_failed: 15,
  // relayd's own (1.1, never sent to 1.0 sessions): the source's socket
  // was lost and the relay waits for it, and the source resumed.
  src_reconnecting: 100,
  src_resumed: 101,
});

function invert(table) {
  const out = {};
  for (const [k, v] of Object.entries(table)) out[v] = k;
  return Object.freeze(out);
}
const relayStateWords = invert(RelayState);
const relayErrorWords = invert(RelayErrorCode);
const relayEventWords = invert(RelayEvent);

/** The word of a relay state code (2 -> "running"). */
export function relayStateName(code) {
  return relayStateWords[code];
}
/** The word of a relay error code (5 -> "failed_join_dest"). */
export function relayErrorName(code) {
  return relayErrorWords[code];
}
/** The word of a relay event code (3 -> "joined_dest_channel"). */
export function relayEventName(code) {
  return relayEventWords[code];
}

// fillPair completes a {word, code} pair of a relay table when the server
// sent only one of the two.
function fillPair(obj, wordKey, codeKey, table, words) {
  if (!obj) return obj;
  const w = obj[wordKey];
  const c = obj[codeKey];
  if (typeof w === "string" && typeof c !== "number" && w in table) obj[codeKey] = table[w];
  if (typeof c === "number" && typeof w !== "string" && c in words) obj[wordKey] = words[c];
  return obj;
}

/** normalizeRelay fills in the words and codes of a relay object and its destinations. */
export function normalizeRelay(relay) {
  if (!relay || typeof relay !== "object") return relay;
  fillPair(relay, "state", "code", RelayState, relayStateWords);
  fillPair(relay, "error", "errorCode", RelayErrorCode, relayErrorWords);
  if (Array.isArray(relay.destinations)) {
    for (const d of relay.destinations) {
      fillPair(d, "state", "code", RelayState, relayStateWords);
      fillPair(d, "error", "errorCode", RelayErrorCode, relayErrorWords);
    }
  }
  return relay;
}

/**
 * tokenClaims reads a JWT's claims without checking its signature (the
 * server does that): {sub, room, exp, ...}, or null when it is not a JWT.
 */
export function tokenClaims(token) {
  try {
    const part = String(token).split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4);
    const claims = JSON.parse(atob(b64));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

// tokenExpired: the token's exp has passed (by this machine's clock).
function tokenExpired(token) {
  const c = tokenClaims(token);
  return !!c && typeof c.exp === "number" && c.exp * 1000 <= Date.now();
}

// ---- helpers

const ROLE_RELAY = "relay";

/** The key of a participant in client.participants: the identity, or "<identity>#relay" for a relay. */
export function participantKey(p) {
  if (!p) return "";
  return p.role === ROLE_RELAY ? p.identity + "#relay" : p.identity;
}

// wsURL turns "http://host:port" or "ws://host:port[/v1/ws]" into the
// signaling URL with the token.
function wsURL(url, token, resume) {
  let base = url;
  if (typeof location !== "undefined") {
    base = new URL(url || "/v1/ws", location.href).toString();
  }
  const u = new URL(base);
  if (u.protocol === "http:") u.protocol = "ws:";
  if (u.protocol === "https:") u.protocol = "wss:";
  if (u.pathname === "/" || u.pathname === "") u.pathname = "/v1/ws";
  u.searchParams.set("token", token);
  if (resume) u.searchParams.set("resume", resume);
  return u.toString();
}

// msidByMid reads the a=mid / a=msid lines of an SDP: mid -> {stream, track}.
function msidByMid(sdp) {
  const out = new Map();
  if (!sdp) return out;
  const sections = sdp.split(/\r?\nm=/).slice(1);
  for (const sec of sections) {
    let mid = null;
    let msid = null;
    for (const line of sec.split(/\r?\n/)) {
      if (line.startsWith("a=mid:")) mid = line.slice(6).trim();
      else if (line.startsWith("a=msid:")) {
        const parts = line.slice(7).trim().split(/\s+/);
        msid = { stream: parts[0], track: parts[1] || "" };
      }
    }
    if (mid !== null && msid) out.set(mid, msid);
  }
  return out;
}

const defaultOptions = {
  version: "1.1",
  reconnect: true,
  maxReconnectAttempts: 12,
  reconnectBaseDelay: 500,
  reconnectMaxDelay: 8000,
  requestTimeout: 15000,
  iceServers: [],
  // 1.1: send camera video as simulcast (540p and above: 3 layers; 360p: 2).
  simulcast: true,
  // 1.1: switch off the layers the server says nobody needs (publisher.layers).
  dynacast: true,
  // 1.1: resume a lost session instead of joining afresh.
  resume: true,
  // The server's --reconnect-grace (docs/protocol.md §12), in ms: how long
  // it holds a lost session; the client cannot ask, the page may say.
  reconnectGrace: DEFAULT_GRACE,
  // sessionStorage key under which the session is kept, so that a reload
  // of the page resumes it ("" = not kept).
  resumeKey: "",
  // 1.1: restart ICE when a PeerConnection fails or the network changes.
  iceRestart: true,
};

/**
 * RelayClient is one participant: one WebSocket and up to two
 * PeerConnections. Events (on/off/once): every server notification under its
 * method name ("participant.joined", "relay.state", ...), plus the client's
 * own: "connection", "track.subscribed", "track.unsubscribed", "room.status",
 * "role.changed", "local.track", "reconnecting", "reconnected", "kicked",
 * "disconnected", "error".
 */
export class RelayClient {
  /** Make a client and open its socket (no join yet). */
  static async connect(url, token, options) {
    const c = new RelayClient(options);
    await c.connect(url, token);
    return c;
  }

  constructor(options = {}) {
    this.options = { ...defaultOptions, ...options };
    this.url = "";
    this.token = "";
    /** "idle" | "connecting" | "connected" | "reconnecting" | "disconnected" */
    this.connectionState = "idle";
    /** Your participant object (after join). */
    this.participant = null;
    /** The room object, or null in a user session. */
    this.room = null;
    /** The other participants: participantKey -> participant. */
    this.participants = new Map();
    /** The room's published tracks: track id -> track. */
    this.tracks = new Map();
    /** Remote tracks received: track id -> {track, participant, mediaTrack, stream, receiver, mid}. */
    this.remoteTracks = new Map();
    /** The local stream being published, or null. */
    this.localStream = null;
    /** The caller's relay (last known), or null. */
    this.relay = null;
    /** The protocol version the server serves this session ("1.0" until a server says "1.1" in the join result). */
    this.version = "1.0";
    /** Per received track id: {state: "paused"|"active", reason} from track.stream (1.1). */
    this.trackStreams = new Map();
    /** 1.1: your own published tracks, track id -> track (with muted), as the server tells them (track.published to the publisher). */
    this.ownTracks = new Map();
    /** 1.1: the session's id and resume token (from the join result), and the last notification's seq. */
    this.sessionId = "";
    this.resumeToken = "";
    this.lastSeq = 0;
    /** The join result's iceServers (TURN), used with options.iceServers by PeerConnections made after it. */
    this.iceServers = [];
    /** 1.1: the last join resumed the session (true), or was a fresh one; gap: notifications were lost. */
    this.resumed = false;
    this.gap = false;
    /** 1.1: per received video track id, the layer it gets: {quality, rid, reason} (track.layer). */
    this.trackLayers = new Map();
    /** 1.1: per received track id, the settings in force (track.settings results). */
    this.trackSettings = new Map();
    /** 1.1: per own track id, the rids the server asks to send (publisher.layers). */
    this.publisherLayers = new Map();
    this.joined = false;
    /** The host kicked you (the socket closed with 4003); no reconnect follows. */
    this.kicked = false;

    this._ws = null;
    this._nextId = 1;
    this._pending = new Map();
    this._handlers = new Map();
    this._pub = null;
    this._sub = null;
    this._pubChain = Promise.resolve();
    this._subChain = Promise.resolve();
    this._remoteQueue = { publisher: [], subscriber: [] };
    this._localQueue = { publisher: [], subscriber: [] };
    this._localReady = { publisher: false, subscriber: false };
    this._orphans = new Map(); // track id -> remote entry waiting for its track object
    this._streams = new Map(); // participantKey -> MediaStream
    this._ownStream = false; // localStream came from getUserMedia here
    this._closing = false; // leave()/close() called
    this._ended = false; // the room ended
    this._noReconnect = false;
    this._reconnecting = false;
    this._publishWanted = null; // {audio, video} to publish again after a reconnect
    this._relayTargets = []; // the destinations of the last successful relay.start/update: [{room, token}]
    this._rejoin = false; // the join under way is an automatic rejoin
    this._lostAt = 0; // when the session's socket was lost (resume), 0 when connected
    this._storedToken = ""; // a token kept with a stored session (a refreshed one)
    this._layersChain = Promise.resolve(); // setParameters calls, one at a time
    this._iceWatch = { publisher: null, subscriber: null }; // timers of a disconnected PC
    this._wake = null; // cuts a reconnect wait short (the network came back)
    this._netOff = null; // removes the network listeners
    this._stored = null; // a session kept by the page before a reload (options.resumeKey)
    this._fromStore = false; // the resume under way is of a stored session (a reload: no PCs of its own)
    this._storedRelay = null; // the relay kept with a stored session
    this._reloaded = false; // the session was resumed after a reload: its media is not proven yet
    this._reloadTimer = null;
    this._retired = null; // the socket a resume on a new one replaces
    this._simulcastProbe = null; // {session, probe}: whether the server takes simulcast
    if (this.options.resumeKey) this._loadResume();
  }

  // ---- events

  /** Subscribe to an event; returns the function that unsubscribes. */
  on(event, fn) {
    let set = this._handlers.get(event);
    if (!set) this._handlers.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Unsubscribe fn from event. */
  off(event, fn) {
    const set = this._handlers.get(event);
    if (set) set.delete(fn);
  }

  /** Call fn at the next event only; without fn, returns a Promise of it. */
  once(event, fn) {
    if (!fn) return new Promise((resolve) => this.once(event, resolve));
    const off = this.on(event, (ev) => {
      off();
      fn(ev);
    });
    return off;
  }

  _emit(event, payload) {
    const set = this._handlers.get(event);
    if (set) {
      for (const fn of [...set]) {
        try {
          fn(payload);
        } catch (err) {
          if (event !== "error") this._emit("error", err);
          else console.error(err);
        }
      }
    }
    const star = this._handlers.get("*");
    if (star) {
      for (const fn of [...star]) {
        try {
          fn({ event, payload });
        } catch (err) {
          console.error(err);
        }
      }
    }
  }

  _setConnection(state, detail) {
    if (this.connectionState === state) return;
    this.connectionState = state;
    this._emit("connection", { state, ...detail });
  }

  // ---- socket

  /** Open the WebSocket. url: "ws(s)://host/v1/ws", or an http(s) origin. */
  connect(url, token) {
    this.url = url;
    this._takeStored(token);
    this.token = this._tokenFor(token);
    this._closing = false;
    this._watchNetwork();
    this._setConnection("connecting");
    return this._open();
  }

  _open() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(wsURL(this.url, this.token, this._canResume() ? this.resumeToken : ""));
      } catch (err) {
        reject(new RelayError(ErrorCode.CLIENT_CLOSED, "bad URL: " + err.message));
        return;
      }
      this._ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        if (!this._reconnecting) this._setConnection("connected");
        resolve();
      };
      ws.onmessage = (ev) => this._onFrame(ev.data);
      ws.onerror = () => {};
      ws.onclose = (ev) => {
        if (!opened) {
          // A refused upgrade (bad or expired token: HTTP 401) shows as 1006.
          reject(new ConnectionError(ev.code, ev.reason || "could not open the WebSocket (bad token, or server unreachable)"));
        }
        if (this._ws === ws) this._onClose(ev.code, ev.reason, opened);
      };
    });
  }

  _send(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * Send a request and await its result. Rejects with RelayError carrying the
   * server's code. Any method of the contract works here; the named methods
   * below are wrappers.
   */
  request(method, params = {}, { timeout } = {}) {
    return new Promise((resolve, reject) => {
      const id = this._nextId++;
      if (!this._send({ jsonrpc: "2.0", id, method, params })) {
        reject(new RelayError(ErrorCode.CLIENT_CLOSED, "not connected", { method }));
        return;
      }
      const ms = timeout ?? this.options.requestTimeout;
      const timer = ms > 0 ? setTimeout(() => {
        this._pending.delete(id);
        reject(new RelayError(ErrorCode.CLIENT_TIMEOUT, "no answer in " + ms + " ms", { method }));
      }, ms) : null;
      this._pending.set(id, { resolve, reject, method, timer });
    });
  }

  _onFrame(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this._emit("error", new RelayError(ErrorCode.PARSE_ERROR, "server sent a frame that is not JSON"));
      return;
    }
    if (!msg || typeof msg !== "object" || Array.isArray(msg)) return;
    if (typeof msg.method === "string") {
      if (msg.id !== undefined && msg.id !== null) this._onServerRequest(msg);
      else this._onNotification(msg.method, msg.params || {});
      return;
    }
    const p = this._pending.get(msg.id);
    if (!p) {
      if (msg.error) this._emit("error", new RelayError(msg.error.code, msg.error.message, { data: msg.error.data }));
      return;
    }
    this._pending.delete(msg.id);
    if (p.timer) clearTimeout(p.timer);
    if (msg.error) p.reject(new RelayError(msg.error.code, msg.error.message, { method: p.method, data: msg.error.data }));
    else p.resolve(msg.result);
  }

  async _onServerRequest(msg) {
    const reply = (body) => this._send({ jsonrpc: "2.0", id: msg.id, ...body });
    if (msg.method !== "offer") {
      reply({ error: { code: ErrorCode.METHOD_NOT_FOUND, message: "method not found: " + msg.method } });
      return;
    }
    const sdp = msg.params && msg.params.sdp;
    if (typeof sdp !== "string") {
      reply({ error: { code: ErrorCode.INVALID_PARAMS, message: "invalid params: sdp is required" } });
      return;
    }
    const ws = this._ws;
    this._subChain = this._subChain.then(async () => {
      try {
        const answer = await this._answerSubscriber(sdp);
        if (this._ws !== ws) return; // a reconnect replaced the socket
        reply({ result: { sdp: answer } });
        this._flushLocal("subscriber");
      } catch (err) {
        reply({ error: { code: ErrorCode.INTERNAL_ERROR, message: "could not answer: " + (err && err.message) } });
        this._emit("error", new RelayError(ErrorCode.CLIENT_MEDIA, "subscriber negotiation failed: " + (err && err.message), { cause: err }));
      }
    });
  }

  _onClose(code, reason, opened) {
    this._ws = null;
    const err = new ConnectionError(code, reason);
    for (const [, p] of this._pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new ConnectionError(code, reason, { method: p.method }));
    }
    this._pending.clear();
    const wasJoined = this.joined;
    this.joined = false;
    const final =
      this._closing ||
      this._ended ||
      this._noReconnect ||
      !this.options.reconnect ||
      !wasJoined ||
      code === 4003 || // kicked
      (code === 1000 && /replaced|resumed/i.test(reason || "")) ||
      (code === 1000 && /ended|left/i.test(reason || ""));
    // 1.1: a session that may be resumed keeps its PeerConnections (the
    // server holds it for the grace); otherwise they go now.
    const keep = !final && this._canResume();
    if (keep) this._lostAt = Date.now();
    else this._closePeers();
    if (final) {
      if (code === 4003 || /replaced|resumed|ended|left/i.test(reason || "") || this._ended) this._clearResume();
      if (!this._reconnecting) {
        this._stopLocal();
        // A close with 4003 is the host's participant.kick (PROTOCOL.md
        // "Chat"): said once as "kicked", then "disconnected" as always.
        const kicked = opened && code === ErrorCode.FORBIDDEN && !this._closing;
        if (kicked) {
          this.kicked = true;
          this._emit("kicked", { code, reason, room: this.room ? this.room.name : "" });
        }
        this._setConnection("disconnected", { code, reason });
        this._emit("disconnected", { code, reason, ended: this._ended, kicked, error: opened ? null : err });
      }
      return;
    }
    this._reconnect();
  }

  /**
   * The milliseconds the server still holds this session after its socket
   * was lost (options.reconnectGrace from the loss), or 0: connected, over,
   * or not resumable.
   */
  graceLeft() {
    return this._canResume() ? graceLeft(this._lostAt, this.options.reconnectGrace, Date.now()) : 0;
  }

  // _sleep waits ms, or less when _wake is called (the network came back).
  _sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self._wake === done) self._wake = null;
        resolve();
      }
      this._wake = done;
    });
  }

  async _reconnect({ immediate = false, reason = "" } = {}) {
    if (this._reconnecting) return;
    this._reconnecting = true;
    this._setConnection("reconnecting");
    const o = this.options;
    let lastErr = null;
    for (let attempt = 1; attempt <= o.maxReconnectAttempts && !this._closing; attempt++) {
      const left = this.graceLeft();
      const delay = immediate && attempt === 1 ? 0 : reconnectDelay(attempt, { base: o.reconnectBaseDelay, max: o.reconnectMaxDelay, graceLeft: left }, Math.random());
      this._emit("reconnecting", {
        attempt, delay, error: lastErr, reason, resuming: this._canResume(),
        graceLeft: left, deadline: left > 0 ? Date.now() + left : 0,
      });
      await this._sleep(delay);
      if (this._closing) break;
      try {
        if (o.tokenProvider) this.token = this._tokenFor(await o.tokenProvider());
        await this._open();
        let res;
        this._rejoin = true;
        try {
          res = await this.join();
        } finally {
          this._rejoin = false;
        }
        this._reconnecting = false;
        this._lostAt = 0;
        this._closeRetired();
        this._setConnection("connected");
        try {
          if (res.resumed) await this._afterResume();
          else if (this._publishWanted && this.localStream && this.mayPublish()) await this._publishStream(this.localStream);
        } catch (err) {
          this._emit("error", err);
        }
        this._emit("reconnected", res);
        return;
      } catch (err) {
        lastErr = err;
        if (this._ws) {
          const ws = this._ws;
          this._ws = null;
          ws.onclose = null;
          ws.close();
        }
        if (err instanceof RelayError && [4001, 4003, 4004, 4009].includes(err.code)) {
          // No use trying again. 4009 at join: the room ended meanwhile.
          if (err.code === ErrorCode.CONFLICT) this._ended = true;
          break;
        }
      }
    }
    this._reconnecting = false;
    this._lostAt = 0;
    this._closeRetired();
    this._closePeers();
    this._clearResume();
    this._stopLocal();
    // 4003 at a rejoin: banned from the room while the socket was down.
    const kicked = lastErr instanceof RelayError && lastErr.code === ErrorCode.FORBIDDEN && !this._closing;
    if (kicked) {
      this.kicked = true;
      this._emit("kicked", { code: ErrorCode.FORBIDDEN, reason: lastErr.serverMessage || "forbidden", room: this.room ? this.room.name : "" });
    }
    this._setConnection("disconnected", { error: lastErr });
    this._emit("disconnected", { code: 1006, reason: "reconnect failed", ended: this._ended, kicked, error: lastErr });
  }

  // ---- notifications

  _onNotification(method, params) {
    // 1.1: every notification but trickle has a seq; a resume's replay may
    // repeat ones the join result already counts.
    if (typeof params.seq === "number" && params.seq > this.lastSeq) {
      this.lastSeq = params.seq;
      this._saveResume();
    }
    switch (method) {
      case "trickle":
        this._onRemoteCandidate(params.target, params.candidate);
        return;
      case "participant.joined":
      case "participant.updated": {
        const p = params.participant;
        if (!p) break;
        if (this.participant && p.identity === this.participant.identity && p.role !== ROLE_RELAY &&
            !this.participants.has(participantKey(p))) {
          this._setSelf(p);
        } else {
          this.participants.set(participantKey(p), p);
          for (const t of p.tracks || []) this._addTrack(t, p);
        }
        break;
      }
      case "participant.left": {
        const p = params.participant;
        if (!p) break;
        const key = participantKey(p);
        for (const [id, t] of this.tracks) {
          if (this._ownerKey(t) === key) this._removeTrack(id);
        }
        this.participants.delete(key);
        this._streams.delete(key);
        break;
      }
      case "track.published":
        if (this._isOwn(params.track)) this.ownTracks.set(params.track.id, params.track);
        else if (params.track) this._addTrack(params.track);
        break;
      case "track.unpublished":
        if (this._isOwn(params.track)) this.ownTracks.delete(params.track.id);
        else if (params.track) this._removeTrack(params.track.id);
        break;
      case "track.muted": {
        // 1.1: a track muted or unmuted (by its publisher or an operator);
        // the track objects follow.
        const t = this.tracks.get(params.trackId) || this.ownTracks.get(params.trackId);
        if (t) t.muted = !!params.muted;
        break;
      }
      case "room.updated":
        if (params.room) this._setRoom(params.room);
        break;
      case "token.refresh":
        // 1.1: the next reconnect uses it (unless a tokenProvider gives
        // one), and the PeerConnections the fresh TURN credentials.
        if (typeof params.token === "string" && params.token) this.token = params.token;
        if (Array.isArray(params.iceServers)) this._applyIceServers(params.iceServers);
        this._saveResume();
        break;
      case "track.layer":
        // 1.1: the layer a received video track now comes in.
        if (params.trackId) this.trackLayers.set(params.trackId, { quality: params.quality || "", rid: params.rid || "", reason: params.reason || "" });
        break;
      case "track.updated": {
        // 1.1: a track object changed (its layers): the one kept follows.
        const t = params.track;
        if (!t || !t.id) break;
        const kept = this.tracks.get(t.id) || this.ownTracks.get(t.id);
        if (kept) Object.assign(kept, t);
        else if (this._isOwn(t)) this.ownTracks.set(t.id, t);
        break;
      }
      case "publisher.layers":
        // 1.1 dynacast: the layers of an own track someone needs.
        if (params.trackId && Array.isArray(params.active)) {
          this.publisherLayers.set(params.trackId, params.active.slice());
          this._applyLayers(params.trackId);
        }
        break;
      case "track.stream":
        // 1.1: a received track paused or active again (relay_paused,
        // publisher_reconnecting, bandwidth); transitions only.
        if (params.trackId) {
          if (params.state === "paused") this.trackStreams.set(params.trackId, { state: "paused", reason: params.reason || "" });
          else this.trackStreams.delete(params.trackId);
        }
        break;
      case "relay.state":
        fillPair(params, "state", "code", RelayState, relayStateWords);
        fillPair(params, "error", "errorCode", RelayErrorCode, relayErrorWords);
        if (!this.relay || (params.relay && this.relay.id !== params.relay)) {
          // The first state (connecting) may come before relay.start's result.
          this.relay = { id: params.relay, source: null, state: "idle", code: 0, error: "none", errorCode: 0, paused: false, destinations: [] };
        }
        for (const k of ["state", "code", "error", "errorCode"]) {
          if (params[k] !== undefined) this.relay[k] = params[k];
        }
        if (Array.isArray(params.destinations)) {
          // A server that sends the destinations with the state: the truth.
          this.relay.destinations = normalizeRelay({ destinations: JSON.parse(JSON.stringify(params.destinations)) }).destinations;
        } else if (params.state === "idle") {
          for (const d of this.relay.destinations || []) Object.assign(d, { state: "idle", code: 0 });
        } else if (params.state === "running" || params.state === "failure") {
          this._relayInferFailed(params);
        }
        break;
      case "relay.event":
        fillPair(params, "event", "code", RelayEvent, relayEventWords);
        this._relayDestinationEvent(params);
        break;
    }
    this._emit(method, params);
  }

  // _relayDestinationEvent keeps client.relay's destinations current between
  // results: joined_dest_channel (3) and sent_to_dest_channel (4) mean that
  // destination runs.
  _relayDestinationEvent(ev) {
    const r = this.relay;
    if (!r || !ev.room || (ev.relay && r.id && ev.relay !== r.id)) return;
    if (ev.code === RelayEvent.disconnect) {
      // That destination is left: its room ended (the server drops it) or
      // its node was lost (failure 8, in the next relay object).
      const d = (r.destinations || []).find((x) => x.room === ev.room);
      if (d && d.state !== "failure") Object.assign(d, { state: "idle", code: RelayState.idle, error: "none", errorCode: 0, left: true });
      return;
    }
    if (ev.code !== RelayEvent.joined_dest_channel && ev.code !== RelayEvent.sent_to_dest_channel) return;
    r.destinations = r.destinations || [];
    let d = r.destinations.find((x) => x.room === ev.room);
    if (!d) {
      d = { room: ev.room, identity: this.participant ? this.participant.identity : "", error: "none", errorCode: 0 };
      r.destinations.push(d);
    }
    Object.assign(d, { state: "running", code: RelayState.running, error: "none", errorCode: 0 });
    delete d.inferred;
    delete d.left;
  }

  // _relayInferFailed: the server joins every destination before the
  // relay.state that follows connecting (event 3 for each one joined), and
  // that notification carries no destinations. A destination still
  // "connecting" then has failed; its error is the relay's when none runs
  // (the first destination's, in order), else what the token tells: a
  // destination token past its exp is dest_token_expired (11), anything
  // else failed_join_dest (5), as the server decides. Marked inferred: the
  // next relay object (update, pause, stop) says it exactly.
  _relayInferFailed(st) {
    const r = this.relay;
    let relayError = st.state === "failure" && st.errorCode ? st.errorCode : 0;
    for (const d of r.destinations || []) {
      if (d.state !== "connecting") continue;
      let code = relayError;
      relayError = 0;
      if (!code) {
        const t = this._relayTargets.find((x) => x.room === d.room);
        code = t && tokenExpired(t.token) ? RelayErrorCode.dest_token_expired : RelayErrorCode.failed_join_dest;
      }
      Object.assign(d, { state: "failure", code: RelayState.failure, error: relayErrorWords[code], errorCode: code, inferred: true });
    }
  }

  _setSelf(p) {
    const before = this.participant ? this.participant.role : undefined;
    this.participant = p;
    if (before !== p.role) {
      this._emit("role.changed", { role: p.role, previous: before });
      if ((before === "cohost" || before === "host") && !this.mayPublish()) {
        // Removed from the stage: the server has closed our publisher PC.
        this._publishWanted = null;
        this._closePublisher();
        this._stopLocal();
      }
    }
  }

  _setRoom(room) {
    const before = this.room ? this.room.status : undefined;
    this.room = room;
    if (room.status === "ended") {
      this._ended = true;
      this._clearResume(); // nothing left to resume
    }
    if (before !== room.status) this._emit("room.status", { status: room.status, previous: before, room });
  }

  // ---- join / leave

  /**
   * Join (identity, room and role come from the token). Asks for the
   * options' version ("1.1" by default; null: send none, a 1.0 join). A 1.1
   * host's join into an ended room starts the room's next broadcast; so an
   * automatic rejoin of a host asks for none, and gets 4009 if the room
   * ended while the socket was down, rather than start a new show by itself.
   *
   * 1.1: a client with a resume token (from the last join result, or kept
   * under options.resumeKey across a reload) opened its socket with
   * `resume=` and asks to resume with `lastSeq` (a resume never starts a
   * broadcast). `resumed: true` keeps the session: the PeerConnections
   * stay, the missed notifications follow, then the server's subscriber
   * offer with an ICE restart; `resumed: false` is a fresh session: the
   * old PeerConnections go.
   */
  async join() {
    const params = {};
    const v = this.options.version;
    const host = this.participant && this.participant.role === "host";
    const resuming = this._canResume();
    if (v && (resuming || !(this._rejoin && host))) params.version = String(v);
    if (resuming) params.lastSeq = this.lastSeq;
    const res = await this.request("join", params);
    this.joined = true;
    this.version = typeof res.version === "string" ? res.version : "1.0";
    this.resumed = resuming && res.resumed === true;
    this.gap = this.resumed && res.gap === true;
    this._reloaded = this.resumed && this._fromStore && !this._pub && !this._sub;
    this._fromStore = false;
    // The relay kept with a session resumed after a reload still runs.
    if (this._storedRelay && this.resumed && !this.relay) this.relay = this._storedRelay;
    this._storedRelay = null;
    if (!this.resumed) {
      // A fresh session: whatever the old one had is gone (its PCs too).
      if (this._pub || this._sub) this._closePeers();
      this.trackStreams.clear();
      this.trackLayers.clear();
      this.trackSettings.clear();
      this.publisherLayers.clear();
    }
    this.sessionId = typeof res.sessionId === "string" ? res.sessionId : "";
    this.resumeToken = typeof res.resumeToken === "string" ? res.resumeToken : "";
    this.lastSeq = typeof res.seq === "number" ? res.seq : 0;
    this._applyIceServers(Array.isArray(res.iceServers) ? res.iceServers : []);
    this.participant = res.participant;
    this._setRoomState(res);
    if (res.room) this._setRoom(res.room);
    else this.room = null;
    this._saveResume();
    if (this._reloaded) this._watchReloadMedia();
    return res;
  }

  // _setRoomState takes the participants and tracks of a join result. On
  // a resume, the tracks still received keep their media (their entries
  // take the new track objects); those gone are unsubscribed.
  _setRoomState(res) {
    const before = new Map(this.remoteTracks);
    this.participants.clear();
    this.tracks.clear();
    if (!this.resumed) this.ownTracks.clear();
    for (const p of res.participants || []) this.participants.set(participantKey(p), p);
    for (const p of res.participants || []) for (const t of p.tracks || []) this._addTrack(t, p);
    for (const t of res.tracks || []) this._addTrack(t);
    const own = (res.participant && res.participant.tracks) || [];
    for (const t of own) if (t && t.id) this.ownTracks.set(t.id, t);
    for (const [id, e] of before) {
      const t = this.tracks.get(id);
      if (!t) {
        this._unsubscribe(id);
        continue;
      }
      e.track = t;
      const p = this.participants.get(this._ownerKey(t));
      if (p) e.participant = p;
    }
    for (const id of [...this.trackStreams.keys()]) if (!this.tracks.has(id)) this.trackStreams.delete(id);
    for (const id of [...this.trackLayers.keys()]) if (!this.tracks.has(id)) this.trackLayers.delete(id);
  }

  /** Whether your role may publish (host, co-host). */
  mayPublish() {
    const r = this.participant && this.participant.role;
    return r === "host" || r === "cohost";
  }

  /** Leave the room: unpublishes at once; the server then closes the socket. */
  async leave() {
    this._closing = true;
    this._clearResume();
    try {
      if (this._ws) await this.request("leave", {}, { timeout: 3000 });
    } catch {
      // closing anyway
    }
    this.close();
  }

  /** Close everything now without telling the server (it sees the socket close). */
  close() {
    this._closing = true;
    this._publishWanted = null;
    this._clearResume();
    this._unwatchNetwork();
    clearTimeout(this._reloadTimer);
    const ws = this._ws;
    if (ws) ws.close(1000, "client closed");
    this._closePeers();
    this._stopLocal();
    if (!ws) this._setConnection("disconnected", { code: 1000, reason: "client closed" });
  }

  // ---- publishing

  /**
   * Publish camera and microphone (getUserMedia), or the tracks of a given
   * stream, on the publisher PC. Returns the local MediaStream.
   */
  async publish({ audio = true, video = true, stream } = {}) {
    if (!this.joined) throw new RelayError(ErrorCode.CLIENT_STATE, "join first", { method: "publish" });
    if (!this.mayPublish()) {
      throw new RelayError(ErrorCode.FORBIDDEN, "your role (" + (this.participant && this.participant.role) + ") may not publish", { method: "publish" });
    }
    let s = stream || this.localStream;
    if (!s) {
      s = await getLocalMedia({ audio, video });
      this._ownStream = true;
    } else if (stream) {
      this._ownStream = false;
    }
    this.localStream = s;
    this._publishWanted = { audio, video };
    try {
      await this._publishStream(s);
    } catch (err) {
      // Resumed after a reload, and the server did not take this page's
      // new publisher PC: start afresh (which publishes again).
      if (!this._reloaded || !this.resumed) throw err;
      await this._restartFresh("the resumed session refused new media: " + (err && err.message));
      if (!this._pub) throw err;
    }
    this._reloaded = false;
    return s;
  }

  async _publishStream(stream) {
    const pc = this._ensurePublisher();
    const sent = new Set(pc.getSenders().map((x) => x.track).filter(Boolean));
    const simulcast = stream.getVideoTracks().some((t) => !sent.has(t)) && (await this._serverSimulcast());
    for (const track of stream.getTracks()) {
      if (sent.has(track)) continue;
      const init = { direction: "sendonly", streams: [stream] };
      const enc = track.kind === "video" && simulcast ? this._sendEncodings(track) : null;
      if (enc) init.sendEncodings = enc;
      pc.addTransceiver(track, init);
      this._emit("local.track", { track, stream, simulcast: !!enc });
    }
    await this._negotiatePublisher();
  }

  /** Stop publishing: closes the publisher PC; the server unpublishes the tracks. */
  async unpublish({ stopTracks = true } = {}) {
    this._publishWanted = null;
    this._closePublisher();
    if (stopTracks) this._stopLocal();
  }

  /** The ICE servers of a new PeerConnection: the options', then the server's (the join result's). */
  _iceServers() {
    return [...(this.options.iceServers || []), ...this.iceServers];
  }

  _ensurePublisher() {
    if (this._pub) return this._pub;
    const pc = new RTCPeerConnection({ iceServers: this._iceServers(), bundlePolicy: "max-bundle" });
    this._pub = pc;
    this._localReady.publisher = false;
    this._localQueue.publisher = [];
    this._remoteQueue.publisher = [];
    pc.onicecandidate = (ev) => this._onLocalCandidate("publisher", pc, ev.candidate);
    pc.onconnectionstatechange = () => {
      this._emit("pc.state", { target: "publisher", state: pc.connectionState });
      this._watchPeer("publisher", pc);
    };
    return pc;
  }

  _negotiatePublisher({ iceRestart = false } = {}) {
    const run = async () => {
      const pc = this._pub;
      if (!pc) return;
      const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
      // The new offer's candidates go after it (new ICE credentials).
      this._localReady.publisher = false;
      await pc.setLocalDescription(offer);
      const p = this.request("offer", { sdp: pc.localDescription.sdp });
      // The offer is on the socket: candidates may follow it.
      this._localReady.publisher = true;
      this._flushLocal("publisher");
      let res;
      try {
        res = await p;
      } catch (err) {
        if (this._pub === pc) this._closePublisher();
        throw err;
      }
      if (this._pub !== pc) return;
      await pc.setRemoteDescription({ type: "answer", sdp: res.sdp });
      await this._flushRemote("publisher");
      for (const id of this.publisherLayers.keys()) this._applyLayers(id);
    };
    const next = this._pubChain.then(run, run);
    this._pubChain = next.catch(() => {});
    return next;
  }

  _closePublisher() {
    const pc = this._pub;
    this._pub = null;
    if (pc) pc.close();
    this._localReady.publisher = false;
    this._remoteQueue.publisher = [];
    this._localQueue.publisher = [];
  }

  _stopLocal() {
    if (this.localStream && this._ownStream) {
      for (const t of this.localStream.getTracks()) t.stop();
      this.localStream = null;
    }
  }

  // ---- subscribing

  _ensureSubscriber() {
    if (this._sub) return this._sub;
    const pc = new RTCPeerConnection({ iceServers: this._iceServers(), bundlePolicy: "max-bundle" });
    this._sub = pc;
    this._localReady.subscriber = false;
    this._localQueue.subscriber = [];
    pc.onicecandidate = (ev) => this._onLocalCandidate("subscriber", pc, ev.candidate);
    pc.ontrack = (ev) => this._onRemoteTrack(pc, ev);
    pc.onconnectionstatechange = () => {
      this._emit("pc.state", { target: "subscriber", state: pc.connectionState });
      this._watchPeer("subscriber", pc);
    };
    return pc;
  }

  async _answerSubscriber(sdp) {
    const cur = this._sub && this._sub.currentRemoteDescription;
    if (cur && dtlsFingerprint(cur.sdp) && dtlsFingerprint(sdp) && dtlsFingerprint(cur.sdp) !== dtlsFingerprint(sdp)) {
      // Another server PC (it replaced its own after this page reloaded,
      // docs/protocol.md §8.12): a new PC here too, with its tracks.
      this._sub.close();
      this._sub = null;
      for (const id of [...this.remoteTracks.keys()]) this._unsubscribe(id);
      this._orphans.clear();
      this._remoteQueue.subscriber = [];
      this._localQueue.subscriber = [];
    }
    const pc = this._ensureSubscriber();
    await pc.setRemoteDescription({ type: "offer", sdp });
    await this._flushRemote("subscriber");
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this._localReady.subscriber = true; // once the answer is sent (see _onServerRequest)
    // Transceivers the new offer stopped using: their tracks are gone.
    this._dropInactive(pc);
    return pc.localDescription.sdp;
  }

  _onRemoteTrack(pc, ev) {
    if (pc !== this._sub) return; // a PC replaced meanwhile
    const mid = ev.transceiver && ev.transceiver.mid;
    const msid = msidByMid(pc.remoteDescription && pc.remoteDescription.sdp).get(mid);
    const identity = (msid && msid.stream) || (ev.streams[0] && ev.streams[0].id) || "";
    const trackId = (msid && msid.track) || ev.track.id;
    const entry = { trackId, identity, mediaTrack: ev.track, receiver: ev.receiver, mid, transceiver: ev.transceiver, track: null, participant: null, stream: null };
    // A transceiver the server reuses for another track: the old one is gone.
    for (const [id, e] of this.remoteTracks) if (e.transceiver === ev.transceiver || id === trackId) this._unsubscribe(id);
    for (const [id, e] of this._orphans) if (e.transceiver === ev.transceiver) this._orphans.delete(id);
    const t = this.tracks.get(trackId);
    if (t) this._subscribed(entry, t);
    else this._orphans.set(trackId, entry); // track.published not seen yet
  }

  _subscribed(entry, track) {
    const key = this._ownerKey(track);
    const participant = this.participants.get(key) || { identity: track.participant, role: "", tracks: [] };
    let stream = this._streams.get(key);
    if (!stream) {
      stream = new MediaStream();
      this._streams.set(key, stream);
    }
    for (const t of stream.getTracks()) if (t.kind === entry.mediaTrack.kind) stream.removeTrack(t);
    stream.addTrack(entry.mediaTrack);
    entry.track = track;
    entry.participant = participant;
    entry.stream = stream;
    this.remoteTracks.set(track.id, entry);
    this._emit("track.subscribed", {
      track, participant, mediaTrack: entry.mediaTrack, stream, receiver: entry.receiver,
      participantKey: key,
    });
  }

  _unsubscribe(trackId) {
    const entry = this.remoteTracks.get(trackId);
    this._orphans.delete(trackId);
    if (!entry) return;
    this.remoteTracks.delete(trackId);
    if (entry.stream) entry.stream.removeTrack(entry.mediaTrack);
    this._emit("track.unsubscribed", {
      track: entry.track, participant: entry.participant, mediaTrack: entry.mediaTrack, stream: entry.stream,
      participantKey: participantKey(entry.participant),
    });
  }

  _dropInactive(pc) {
    for (const tr of pc.getTransceivers()) {
      const dir = tr.currentDirection || tr.direction;
      if (tr.stopped || dir === "inactive" || dir === "stopped") {
        for (const [id, e] of this.remoteTracks) if (e.transceiver === tr) this._unsubscribe(id);
      }
    }
  }

  // _ownerKey finds the participant that publishes a track: the one that
  // lists it, else the identity's direct participant, else its relay.
  _ownerKey(track) {
    if (track._owner) return track._owner;
    const direct = this.participants.get(track.participant);
    const relay = this.participants.get(track.participant + "#relay");
    let key = track.participant;
    const lists = (p) => p && (p.tracks || []).some((t) => t.id === track.id);
    if (lists(relay)) key = participantKey(relay);
    else if (lists(direct)) key = participantKey(direct);
    else if (relay && !direct) key = participantKey(relay);
    else if (relay && direct) {
      // Both present: the relay when the direct participant may not publish.
      if (direct.role === "viewer") key = participantKey(relay);
    }
    if (this.participants.has(key)) {
      Object.defineProperty(track, "_owner", { value: key, enumerable: false, configurable: true });
    }
    return key;
  }

  // _isOwn tells one of your own tracks (1.1 servers tell a publisher of
  // its own): your identity, and no relay of that identity in the room.
  _isOwn(t) {
    return !!(t && t.id && this.participant && t.participant === this.participant.identity &&
      !this.participants.has(t.participant + "#relay"));
  }

  _addTrack(t, p) {
    if (!t || !t.id) return;
    if (p) Object.defineProperty(t, "_owner", { value: participantKey(p), enumerable: false, configurable: true });
    this.tracks.set(t.id, t);
    const owner = this.participants.get(this._ownerKey(t));
    if (owner) {
      owner.tracks = owner.tracks || [];
      if (!owner.tracks.some((x) => x.id === t.id)) owner.tracks.push(t);
    }
    const orphan = this._orphans.get(t.id);
    if (orphan) {
      this._orphans.delete(t.id);
      this._subscribed(orphan, t);
    }
  }

  _removeTrack(id) {
    const t = this.tracks.get(id);
    this.tracks.delete(id);
    this.trackStreams.delete(id);
    if (t) {
      const owner = this.participants.get(this._ownerKey(t));
      if (owner && owner.tracks) owner.tracks = owner.tracks.filter((x) => x.id !== id);
    }
    this._unsubscribe(id);
  }

  /** The MediaStream of a participant's received tracks (by participantKey), or undefined. */
  streamOf(key) {
    return this._streams.get(key);
  }

  // ---- ICE

  _onLocalCandidate(target, pc, cand) {
    if ((target === "publisher" ? this._pub : this._sub) !== pc) return;
    const init = cand ? cand.toJSON() : null;
    if (!this._localReady[target]) {
      this._localQueue[target].push(init);
      return;
    }
    this._trickle(target, init);
  }

  _flushLocal(target) {
    const q = this._localQueue[target];
    this._localQueue[target] = [];
    for (const c of q) this._trickle(target, c);
  }

  _trickle(target, candidate) {
    this.request("trickle", { target, candidate }).catch((err) => {
      if (err.code !== ErrorCode.CLIENT_CLOSED) this._emit("error", err);
    });
  }

  _onRemoteCandidate(target, candidate) {
    if (!candidate) return; // end of candidates
    const pc = target === "publisher" ? this._pub : target === "subscriber" ? this._sub : null;
    if (!pc || !pc.remoteDescription) {
      if (target === "publisher" || target === "subscriber") this._remoteQueue[target].push(candidate);
      return;
    }
    pc.addIceCandidate(candidate).catch((err) => this._emit("error", new RelayError(ErrorCode.CLIENT_MEDIA, "addIceCandidate: " + err.message)));
  }

  async _flushRemote(target) {
    const pc = target === "publisher" ? this._pub : this._sub;
    const q = this._remoteQueue[target];
    this._remoteQueue[target] = [];
    for (const c of q) {
      try {
        await pc.addIceCandidate(c);
      } catch (err) {
        this._emit("error", new RelayError(ErrorCode.CLIENT_MEDIA, "addIceCandidate: " + err.message));
      }
    }
  }

  _closePeers() {
    this._closePublisher();
    if (this._sub) {
      this._sub.close();
      this._sub = null;
    }
    for (const id of [...this.remoteTracks.keys()]) this._unsubscribe(id);
    this._orphans.clear();
    this._remoteQueue.subscriber = [];
    this._localQueue.subscriber = [];
    this._localReady.subscriber = false;
    this._subChain = Promise.resolve();
    this._pubChain = Promise.resolve();
  }

  // ---- stats

  /** Per received video track: frames decoded and more, from getStats (inbound-rtp). */
  async videoStats() {
    const pc = this._sub;
    if (!pc) return [];
    const report = await pc.getStats();
    const out = [];
    report.forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "video") return;
      let entry = null;
      for (const e of this.remoteTracks.values()) if (e.mid === s.mid || (s.trackIdentifier && e.mediaTrack.id === s.trackIdentifier)) entry = e;
      out.push({
        trackId: entry ? entry.trackId : "",
        participant: entry ? entry.identity : "",
        mid: s.mid,
        framesDecoded: s.framesDecoded || 0,
        framesReceived: s.framesReceived || 0,
        frameWidth: s.frameWidth || 0,
        frameHeight: s.frameHeight || 0,
        bytesReceived: s.bytesReceived || 0,
        packetsLost: s.packetsLost || 0,
        codec: s.codecId ? (report.get(s.codecId) || {}).mimeType : undefined,
      });
    });
    return out;
  }

  /** getStats of one PC ("publisher" | "subscriber"), or null. */
  async getStats(target = "subscriber") {
    const pc = target === "publisher" ? this._pub : this._sub;
    return pc ? pc.getStats() : null;
  }

  // ---- room

  /** End the room for everyone (host only). */
  stopRoom() {
    return this.request("room.stop", {});
  }

  /**
   * Turn recording of the room on or off (host only), for tracks published
   * from then on. A server that has no such method answers -32601; one
   * that has it shows the room's `recording` in the room object.
   */
  async setRecording(on) {
    const res = await this.request("room.record", { on: !!on });
    if (res && typeof res === "object" && res.name && this.room && res.name === this.room.name) this._setRoom({ ...this.room, ...res });
    return res;
  }

  /** Whether the server tells this room's recording (a `recording` field in the room object). */
  recordingKnown() {
    return !!this.room && typeof this.room.recording === "boolean";
  }

  /**
   * Kick a participant (host only): its socket closes with 4003 (its client
   * emits "kicked"). ban keeps it out of the room until the room ends; an
   * identity not in the room can be banned ahead.
   */
  kick(identity, { ban = false } = {}) {
    return this.request("participant.kick", { identity, ban: !!ban });
  }

  /**
   * Mute or unmute one of your own published tracks (1.1 track.mute): the
   * server forwards nothing of it while muted (to relays neither).
   * Resolves with the track object. See ownTracks for the ids.
   */
  async muteTrack(trackId, muted) {
    const t = await this.request("track.mute", { trackId, muted: !!muted });
    if (t && t.id) this.ownTracks.set(t.id, t);
    return t;
  }

  /** Your own published track of a kind ("audio" | "video"), as the server told it (1.1), or undefined. */
  ownTrack(kind) {
    return [...this.ownTracks.values()].find((t) => t.kind === kind);
  }

  // ---- invitations

  /** Invite a user to co-host (host only). Resolves with the invitation. */
  createInvitation(user) {
    return this.request("invitation.create", { user });
  }

  /** The room's invitations (host) or your own (others); status filters. */
  async listInvitations(status) {
    const res = await this.request("invitation.list", status ? { status } : {});
    return (res && res.invitations) || [];
  }

  /** Accept an invitation (invitee only). */
  acceptInvitation(id) {
    return this.request("invitation.accept", { id });
  }

  /** Decline an invitation (invitee only). */
  rejectInvitation(id) {
    return this.request("invitation.reject", { id });
  }

  /** Cancel a pending invitation (host only). */
  cancelInvitation(id) {
    return this.request("invitation.cancel", { id });
  }

  /** Take a co-host off the stage (host only). */
  removeCohost(user) {
    return this.request("cohost.remove", { user });
  }

  /** Leave the stage (co-host only): back to viewer, still in the room. */
  async leaveStage() {
    const res = await this.request("stage.leave", {});
    this._publishWanted = null;
    this._closePublisher();
    this._stopLocal();
    return res;
  }

  // ---- relay

  _relayResult(p, targets) {
    return p.then((r) => {
      if (targets) this._relayTargets = targets.map((d) => ({ room: d && d.room, token: d && d.token }));
      normalizeRelay(r);
      // client.relay follows the notifications; the caller keeps the result as it was.
      this.relay = r && typeof r === "object" ? JSON.parse(JSON.stringify(r)) : r;
      return r;
    });
  }

  /** Relay your published tracks to other rooms: [{room, token}], up to the server's limit. */
  startRelay(destinations) {
    return this._relayResult(this.request("relay.start", { destinations }), destinations);
  }

  /** Replace the relay's destination set. */
  updateRelay(destinations) {
    return this._relayResult(this.request("relay.update", { destinations }), destinations);
  }

  /** Stop the relay (state idle). */
  stopRelay() {
    return this._relayResult(this.request("relay.stop", {}));
  }

  /** Stop sending to every destination without leaving them. */
  pauseRelay() {
    return this._relayResult(this.request("relay.pause", {}));
  }

  /** Send to the destinations again (after a keyframe). */
  resumeRelay() {
    return this._relayResult(this.request("relay.resume", {}));
  }

  // ---- chat
  //
  // Every participant of a room chats (a user session may not: 4003). The
  // server stores and sends text exactly as typed: put it in the page with
  // textContent, never as markup. Message ids sort in the room's order.

  /**
   * Send a chat message (1-2000 characters). Resolves with the message; the
   * sender gets no "chat.message" for its own. 4029 beyond 5 a second
   * (bursts of 10); the connection stays usable.
   */
  sendChat(text) {
    return this.request("chat.send", { text });
  }

  /**
   * The room's chat history, newest last: up to limit (default 50, at most
   * 200) messages before the message id before (default: the newest).
   */
  async chatHistory({ before, limit } = {}) {
    const params = {};
    if (before !== undefined && before !== null && before !== "") params.before = before;
    if (limit !== undefined && limit !== null) params.limit = limit;
    const res = await this.request("chat.history", params);
    return (res && res.messages) || [];
  }

  /** Delete a chat message (host only); everyone else gets "chat.deleted". */
  deleteChat(id) {
    return this.request("chat.delete", { id });
  }
}

/** getUserMedia with a RelayError (CLIENT_MEDIA) on failure. */
export async function getLocalMedia({ audio = true, video = true } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new RelayError(ErrorCode.CLIENT_MEDIA, "getUserMedia is not available (the page needs https or localhost)");
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio,
      video: video === true ? { width: { ideal: 1280 }, height: { ideal: 720 } } : video,
    });
  } catch (err) {
    throw new RelayError(ErrorCode.CLIENT_MEDIA, "camera/microphone: " + (err && (err.message || err.name)), { cause: err });
  }
}

// The methods kept in their own modules (relay-resume.js,
// relay-simulcast.js) join RelayClient's prototype, and their statics the
// class. Those modules import this one back; they only use its exports
// inside methods, so the cycle is harmless.
for (const part of [ResumeMethods, SimulcastMethods]) {
  for (const name of Object.getOwnPropertyNames(part.prototype)) {
    if (name !== "constructor") Object.defineProperty(RelayClient.prototype, name, Object.getOwnPropertyDescriptor(part.prototype, name));
  }
  for (const name of Object.getOwnPropertyNames(part)) {
    if (!["length", "name", "prototype"].includes(name)) Object.defineProperty(RelayClient, name, Object.getOwnPropertyDescriptor(part, name));
  }
}

export default RelayClient;

// dtlsFingerprint is a description's first a=fingerprint value ("" if none):
// one per PeerConnection's certificate.
function dtlsFingerprint(sdp) {
  const m = /^a=fingerprint:(.+)$/m.exec(sdp || "");
  return m ? m[1].trim().toLowerCase() : "";
}
