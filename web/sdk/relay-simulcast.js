// relay-simulcast.js: RelayClient's simulcast publishing, dynacast and
// per-track settings (protocol 1.1: docs/protocol.md §8.10), kept apart
// from the client's socket, signaling and media code. relay-client.js
// puts these methods on RelayClient's prototype: import relay-client.js,
// not this module.

import { ErrorCode, RelayError } from "./relay-client.js";
import { layerFlags, simulcastEncodings } from "./relay-policy.js";

/** RelayClient's simulcast methods (see relay-client.js's mixin). */
export class SimulcastMethods {
  // _serverSimulcast tells whether the server takes simulcast, once per
  // session: a server that has 1.1's simulcast part (docs/protocol.md
  // §8.10) knows track.settings, and answers an empty track id with an
  // error of the request (4004, -32602); one without it answers -32601. A
  // browser sending layers to a server that cannot take them would send
  // no video at all.
  _serverSimulcast() {
    if (!this.options.simulcast || this.version !== "1.1") return Promise.resolve(false);
    if (!this._simulcastProbe || this._simulcastProbe.session !== this.sessionId) {
      const probe = this.request("track.settings", { trackId: "" }, { timeout: 5000 }).then(
        () => true,
        (err) => err.code !== ErrorCode.METHOD_NOT_FOUND && err.code !== ErrorCode.CLIENT_TIMEOUT && err.code !== ErrorCode.CLIENT_CLOSED,
      );
      this._simulcastProbe = { session: this.sessionId, probe };
    }
    return this._simulcastProbe.probe;
  }

  // _sendEncodings: simulcast for camera video (options.simulcast).
  _sendEncodings(track) {
    // A screen or slides (contentHint "detail"/"text") is sent whole.
    if (track.contentHint === "detail" || track.contentHint === "text") return null;
    const settings = typeof track.getSettings === "function" ? track.getSettings() : {};
    return simulcastEncodings(settings, true);
  }

  // _applyLayers sets encodings[i].active of the sender of an own track as
  // publisher.layers asked (dynacast): the layers nobody needs stop being
  // encoded. One setParameters at a time; a plain (one-layer) sender is
  // left alone.
  _applyLayers(trackId) {
    if (!this.options.dynacast) return;
    const run = async () => {
      const active = this.publisherLayers.get(trackId);
      const pc = this._pub;
      if (!active || !pc) return;
      const sender = this._senderOf(trackId);
      if (!sender) return;
      const params = sender.getParameters();
      const encs = params.encodings || [];
      const flags = layerFlags(encs.map((e) => e.rid), active);
      if (!flags || flags.every((f, i) => encs[i].active === f)) return;
      encs.forEach((e, i) => { e.active = flags[i]; });
      await sender.setParameters(params);
    };
    const next = this._layersChain.then(run, run);
    this._layersChain = next.catch((err) => this._emit("error", new RelayError(ErrorCode.CLIENT_MEDIA, "publisher.layers: " + (err && err.message), { cause: err })));
    return next;
  }

  // _senderOf finds the sender of an own track: by the track object's mid
  // when it has one, else the video sender that sends layers (rids).
  _senderOf(trackId) {
    const pc = this._pub;
    if (!pc) return null;
    const t = this.ownTracks.get(trackId);
    const kind = (t && t.kind) || "video";
    const trs = pc.getTransceivers().filter((tr) => tr.sender && tr.sender.track && tr.sender.track.kind === kind);
    if (t && t.mid) {
      const byMid = trs.find((tr) => tr.mid === t.mid);
      if (byMid) return byMid.sender;
    }
    const layered = trs.filter((tr) => (tr.sender.getParameters().encodings || []).some((e) => e.rid));
    return (layered[0] || trs[0] || {}).sender || null;
  }

  // ---- per-track settings (1.1: docs/protocol.md §8.10)

  /**
   * Say how you want a received track: {quality: "low"|"medium"|"high"|
   * "auto", maxWidth, maxHeight (0 = no limit), paused}; omitted fields
   * keep their value. Resolves with the settings in force
   * (client.trackSettings keeps them).
   */
  async setTrackSettings(trackId, settings = {}) {
    const params = { trackId };
    for (const k of ["quality", "maxWidth", "maxHeight", "paused"]) if (settings[k] !== undefined) params[k] = settings[k];
    const res = await this.request("track.settings", params);
    this.trackSettings.set(trackId, res && typeof res === "object" ? res : { ...this.trackSettings.get(trackId), ...params });
    return res;
  }
}
