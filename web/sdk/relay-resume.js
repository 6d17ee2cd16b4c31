// relay-resume.js: RelayClient's session resume, ICE restart and token
// refresh (protocol 1.1: docs/protocol.md §8.12, §8.13), kept apart from
// the client's socket, signaling and media code. relay-client.js puts
// these methods on RelayClient's prototype (and storedSession on the
// class): import relay-client.js, not this module.

import { ConnectionError, ErrorCode, RelayError, normalizeRelay, tokenClaims } from "./relay-client.js";
import { DEFAULT_GRACE, graceLeft, newerToken, resumable } from "./relay-policy.js";

// How long a page resumed after its reload waits for the media it should
// receive before it starts afresh: a subscriber offer, ICE and DTLS take
// well under a second on a sound network; 4 s leaves room for a slow one.
const RELOAD_MEDIA_WAIT = 4000;

/** RelayClient's resume methods (see relay-client.js's mixin). */
export class ResumeMethods {
  // _watchReloadMedia: a page resumed after its reload has new
  // PeerConnections for the server's held session. When the tracks it
  // should receive have not arrived in time (a server that cannot take
  // them), it starts afresh rather than stay without media.
  _watchReloadMedia() {
    clearTimeout(this._reloadTimer);
    this._reloadTimer = setTimeout(() => {
      if (!this._reloaded || !this.joined || this._closing) return;
      const expected = [...this.tracks.values()].some((t) => !t.muted);
      if (expected && (!this._sub || this._sub.connectionState !== "connected" || this.remoteTracks.size === 0)) {
        this._restartFresh("no media " + RELOAD_MEDIA_WAIT / 1000 + " s after resuming");
      } else if (!this._publishWanted) {
        this._reloaded = false; // publish() proves the rest
      }
    }, RELOAD_MEDIA_WAIT);
  }

  // _restartFresh gives up a resumed session whose media did not come
  // back (after a reload) and joins afresh on a new socket: the server
  // replaces the held session; the stream is published again.
  async _restartFresh(reason) {
    if (this._closing || this._reconnecting) return;
    this._reloaded = false;
    this._emit("resume.failed", { reason });
    this.resumeToken = "";
    this._clearResume();
    const old = this._ws;
    this._ws = null;
    this.joined = false;
    if (old) {
      old.onclose = null;
      old.onmessage = null;
      old.close(1000, "starting afresh");
    }
    this._closePeers();
    this._reconnecting = true;
    this._setConnection("reconnecting");
    this._emit("reconnecting", { attempt: 1, delay: 0, error: null, reason, resuming: false, graceLeft: 0, deadline: 0 });
    try {
      await this._open();
      const res = await this.join();
      this._reconnecting = false;
      this._setConnection("connected");
      if (this._publishWanted && this.localStream && this.mayPublish()) await this._publishStream(this.localStream);
      this._emit("reconnected", res);
    } catch (err) {
      this._reconnecting = false;
      this._emit("error", err);
      if (!this._ws) this._onClose(1006, "starting afresh failed", false);
    }
  }

  // ---- resume, ICE restart, token refresh (1.1: docs/protocol.md §8.12, §8.13)

  /** Whether a lost session may be resumed: a 1.1 session with a resume token, and options.resume. */
  _canResume() {
    return !!(this.options.resume && this.options.version && this.resumeToken && this.version === "1.1");
  }

  // _tokenFor picks the token to connect with: the given one, or the one
  // the client holds (a token.refresh, or kept with a stored session) when
  // that is for the same identity and room and lives longer.
  _tokenFor(given) {
    const held = this.token || this._storedToken;
    return newerToken(given, tokenClaims(given), held, tokenClaims(held));
  }

  // _applyIceServers takes the server's iceServers (join result,
  // token.refresh) for new PeerConnections and the open ones.
  _applyIceServers(list) {
    this.iceServers = list;
    for (const pc of [this._pub, this._sub]) {
      if (!pc || pc.signalingState === "closed" || typeof pc.setConfiguration !== "function") continue;
      try {
        const c = pc.getConfiguration();
        c.iceServers = this._iceServers();
        pc.setConfiguration(c);
      } catch (err) {
        this._emit("error", new RelayError(ErrorCode.CLIENT_MEDIA, "setConfiguration: " + (err && err.message), { cause: err }));
      }
    }
  }

  // _storage is sessionStorage (per tab: a reload keeps it, another tab
  // does not share it), or null where there is none.
  _storage() {
    try {
      return this.options.resumeKey && typeof sessionStorage !== "undefined" ? sessionStorage : null;
    } catch {
      return null;
    }
  }

  // _saveResume keeps what a reloaded page needs to resume: the session,
  // its resume token, the last seq, the token (refreshed or not), and at:
  // the last moment the session was known connected (or its loss).
  _saveResume() {
    const st = this._storage();
    if (!st || !this.resumeToken || this.version !== "1.1" || this._closing || this._ended || this.kicked) return;
    try {
      st.setItem(this.options.resumeKey, JSON.stringify({
        sessionId: this.sessionId, resumeToken: this.resumeToken, lastSeq: this.lastSeq, token: this.token,
        at: this._lostAt || Date.now(), publishing: !!this._publishWanted,
        // A relay survives the source's resume: the reloaded page knows it.
        relay: this.relay && this.relay.state !== "idle" ? this.relay : null, relayTargets: this._relayTargets,
      }));
    } catch {
      // storage full or refused: resume still works without a reload
    }
  }

  _clearResume() {
    const st = this._storage();
    if (st) {
      try {
        st.removeItem(this.options.resumeKey);
      } catch {
        // nothing kept
      }
    }
  }

  // _loadResume reads a stored session; connect() decides whether it fits.
  _loadResume() {
    this._stored = ResumeMethods.storedSession(this.options.resumeKey, { grace: this.options.reconnectGrace });
  }

  // _takeStored makes a stored session this client's, when it is for the
  // token's identity and room and its grace is not over.
  _takeStored(token) {
    const st = this._stored;
    this._stored = null;
    if (!st) return;
    const why = resumable(st, tokenClaims(st.token), tokenClaims(token), Date.now(), this.options.reconnectGrace);
    if (why) {
      this._clearResume();
      return;
    }
    this.sessionId = st.sessionId || "";
    this.resumeToken = st.resumeToken;
    this.lastSeq = st.lastSeq;
    this._lostAt = st.at;
    this._storedToken = st.token || "";
    this.version = "1.1";
    this._fromStore = true;
    this._storedRelay = st.relay && typeof st.relay === "object" ? normalizeRelay(st.relay) : null;
    this._relayTargets = Array.isArray(st.relayTargets) ? st.relayTargets : [];
  }

  /**
   * The session kept under key by a client with options.resumeKey (a page
   * before its reload), while the server may still hold it (grace in ms):
   * {sessionId, resumeToken, lastSeq, token, at, publishing, graceLeft},
   * else null.
   */
  static storedSession(key, { grace = DEFAULT_GRACE } = {}) {
    try {
      const st = key && typeof sessionStorage !== "undefined" ? JSON.parse(sessionStorage.getItem(key) || "null") : null;
      if (!st || typeof st !== "object") return null;
      const left = graceLeft(st.at, grace, Date.now());
      if (left <= 0) {
        sessionStorage.removeItem(key);
        return null;
      }
      return { ...st, graceLeft: left };
    } catch {
      return null;
    }
  }

  // _watchNetwork: "online" (the network is back) and a change of the
  // connection's type resume the session at once; pagehide notes the
  // moment, for a reload to count the grace from.
  _watchNetwork() {
    if (this._netOff || typeof window === "undefined" || !window.addEventListener) return;
    const conn = typeof navigator !== "undefined" ? navigator.connection : null;
    let type = conn && conn.type;
    const online = () => this._onNetworkChange("online");
    const change = () => {
      // Chrome also fires "change" when its bandwidth estimate moves: only
      // a new type (wifi -> cellular) is a new network.
      if (!conn.type || conn.type === type) return;
      type = conn.type;
      this._onNetworkChange("network change");
    };
    const hide = () => this._saveResume();
    window.addEventListener("online", online);
    window.addEventListener("pagehide", hide);
    if (conn && conn.addEventListener) conn.addEventListener("change", change);
    this._netOff = () => {
      window.removeEventListener("online", online);
      window.removeEventListener("pagehide", hide);
      if (conn && conn.removeEventListener) conn.removeEventListener("change", change);
    };
  }

  _unwatchNetwork() {
    if (this._netOff) this._netOff();
    this._netOff = null;
    for (const k of Object.keys(this._iceWatch)) clearTimeout(this._iceWatch[k]);
  }

  _onNetworkChange(reason) {
    if (this._closing || !this.options.iceRestart) return;
    if (this._reconnecting) {
      if (this._wake) this._wake(); // try now rather than after the backoff
      return;
    }
    if (this.joined && this._canResume()) this._resumeNow(reason);
  }

  // _watchPeer restarts ICE when a PeerConnection fails, or stays
  // disconnected for 2 s (a short burst of loss recovers by itself).
  _watchPeer(target, pc) {
    clearTimeout(this._iceWatch[target]);
    this._iceWatch[target] = null;
    if (!this.options.iceRestart || this._closing || (target === "publisher" ? this._pub : this._sub) !== pc) return;
    const st = pc.connectionState;
    if (st === "failed") this._restartIce(target, "failed");
    else if (st === "disconnected") {
      this._iceWatch[target] = setTimeout(() => {
        if (pc.connectionState === "disconnected" || pc.connectionState === "failed") this._restartIce(target, "disconnected");
      }, 2000);
    }
  }

  // _restartIce: the publisher PC re-offers with iceRestart; the
  // subscriber PC is offered by the server only, which restarts its ICE
  // on a resume: so a resume on a new socket. Nothing while a resume is
  // under way (it restarts both). 1.1 sessions only.
  _restartIce(target, reason) {
    if (this._closing || this._reconnecting || !this.joined || this.version !== "1.1") return;
    this._emit("ice.restart", { target, reason });
    if (target === "publisher" && this._pub) {
      this._negotiatePublisher({ iceRestart: true }).catch((err) => this._emit("error", err));
    } else if (target === "subscriber") {
      this._resumeNow(reason);
    }
  }

  // _resumeNow resumes the session on a new socket while the old one may
  // still be open (the server closes it with 1000 "resumed").
  _resumeNow(reason) {
    if (this._reconnecting || this._closing || !this._canResume()) return;
    const old = this._ws;
    this._ws = null;
    this.joined = false;
    if (old) {
      old.onclose = null;
      old.onmessage = null;
      this._retired = old;
    }
    for (const [, p] of this._pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new ConnectionError(1000, "resuming", { method: p.method }));
    }
    this._pending.clear();
    this._lostAt = Date.now();
    this._reconnect({ immediate: true, reason });
  }

  _closeRetired() {
    if (this._retired) this._retired.close();
    this._retired = null;
  }

  // _afterResume: the session is back with its PeerConnections: the
  // publisher restarts ICE (same tracks, mids and ids). A page that was
  // reloaded has none: it publishes its stream on a new one.
  async _afterResume() {
    if (this._pub) await this._negotiatePublisher({ iceRestart: true });
    else if (this._publishWanted && this.localStream && this.mayPublish()) await this._publishStream(this.localStream);
  }
}
