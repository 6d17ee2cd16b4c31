// relay-policy.js: the decisions of relay-client.js as pure functions (no
// DOM, no network, no clock of their own), so they can be table-tested
// (web/policy_test.go): which simulcast layers to send, which layer flags
// a publisher.layers asks for, what a tile asks for with track.settings,
// how long to wait between reconnect tries, and whether a stored session
// may still be resumed. relay-client.js imports it; pages may too.

// ---- simulcast (docs/protocol.md §8.10)

// The three layers of a camera at 540p and above, lowest first (the
// order of a=simulcast, which the server reads as low, medium, high until
// it knows the layers' sizes). A 1280x720 camera gives 320x180, 640x360
// and 1280x720. The bitrates are those of the bench's publishers (about
// 150 / 500 / 1,500 kbit/s), close to LiveKit's presets for these sizes.
const THREE_LAYERS = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

// Below 540p a quarter of the picture is too small to be worth a layer:
// 360p-539p send two (half and full size: low and high), smaller ones one.
const TWO_LAYERS = [
  { rid: "q", scaleResolutionDownBy: 2, maxBitrate: 150_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 600_000 },
];

/**
 * simulcastEncodings gives the sendEncodings of a camera track of
 * settings {width, height} (MediaStreamTrack.getSettings()), or null to
 * send one plain encoding: simulcast off, a size unknown, or a capture
 * under 360p. "540p" is the short side, so a portrait camera counts the same.
 */
export function simulcastEncodings(settings, enabled = true) {
  if (!enabled || !settings) return null;
  const w = Number(settings.width) || 0;
  const h = Number(settings.height) || 0;
  const short = Math.min(w, h);
  if (short <= 0) return null;
  const table = short >= 540 ? THREE_LAYERS : short >= 360 ? TWO_LAYERS : null;
  return table ? table.map((e) => ({ ...e, active: true })) : null;
}

/**
 * layerFlags says which encodings to keep sending for a publisher.layers
 * {active: [rid]}: one boolean per rid of rids (the sender's encodings, in
 * order). An encoding without a rid is the one layer of a plain track and
 * is never switched off (null: nothing to change).
 */
export function layerFlags(rids, active) {
  if (!Array.isArray(rids) || rids.length === 0 || rids.some((r) => !r)) return null;
  const set = new Set(Array.isArray(active) ? active : []);
  return rids.map((r) => set.has(r));
}

// ---- what a tile asks for (track.settings)

// A tile narrower than this many device pixels asks for the low layer
// while the layers' sizes are unknown (a 320-pixel layer fills it).
const SMALL_TILE = 400;

/**
 * tileSettings is what a viewer's tile asks for its video with
 * track.settings: view = {hidden (the document), visible (on screen: the
 * IntersectionObserver's word), width, height (CSS pixels), dpr}, layers:
 * the track object's layers (1.1; may be absent).
 *
 * A tile nobody can see pauses the track. A seen one asks for the
 * smallest layer at least as wide as it is (maxWidth = that layer's
 * width; the server picks the highest layer within maxWidth), so it never
 * gets a picture smaller than it shows; no layer wide enough: no limit.
 * While the sizes are unknown, a small tile asks for quality "low".
 */
export function tileSettings(view, layers) {
  const v = view || {};
  if (v.hidden || v.visible === false || !(v.width > 0) || !(v.height > 0)) return { paused: true };
  const dpr = v.dpr > 0 ? v.dpr : 1;
  const px = Math.ceil(v.width * dpr);
  const widths = (Array.isArray(layers) ? layers : []).map((l) => Number(l && l.width) || 0).filter((w) => w > 0).sort((a, b) => a - b);
  if (widths.length > 0) {
    const fit = widths.find((w) => w >= px);
    return { paused: false, quality: "auto", maxWidth: fit || 0 };
  }
  return { paused: false, quality: px < SMALL_TILE ? "low" : "auto", maxWidth: 0 };
}

/** sameSettings: two track.settings asks that say the same (absent fields are their defaults). */
export function sameSettings(a, b) {
  if (!a || !b) return false;
  const n = (s) => [!!s.paused, s.paused ? "" : s.quality || "auto", s.paused ? 0 : s.maxWidth || 0, s.paused ? 0 : s.maxHeight || 0].join("|");
  return n(a) === n(b);
}

// ---- reconnecting and resuming (docs/protocol.md §8.12)

/** relayd's default --reconnect-grace in ms: how long a lost session is held (the server does not say). */
export const DEFAULT_GRACE = 30000;

/**
 * reconnectDelay is the wait before reconnect attempt n (1, 2, ...):
 * exponential from base, capped at max, jittered into its upper half by r
 * in [0, 1). While the server still holds the session (graceLeft > 0) the
 * cap is 2 s, so that a short outage is not followed by a long wait and
 * the grace is not missed; never past the end of the grace.
 */
export function reconnectDelay(n, { base = 500, max = 8000, graceLeft = 0 } = {}, r = 0.5) {
  const cap = graceLeft > 0 ? Math.min(max, 2000) : max;
  const full = Math.min(cap, base * 2 ** Math.max(0, n - 1));
  const d = Math.round(full / 2 + r * (full / 2));
  return graceLeft > 0 ? Math.max(0, Math.min(d, graceLeft - 250)) : d;
}

/** graceLeft: the milliseconds a session lost at lostAt is still held, 0 when over (or never lost). */
export function graceLeft(lostAt, grace, now) {
  if (!(lostAt > 0) || !(grace > 0)) return 0;
  return Math.max(0, lostAt + grace - now);
}

/**
 * resumable decides whether a stored session (saved in sessionStorage by
 * the client: {sessionId, resumeToken, lastSeq, token, at}, at = the last
 * moment it was known connected) may be resumed by a page about to connect
 * with token, at now, given the server's grace: the same identity and room
 * (the tokens' sub and room claims, given as claims objects), a resume
 * token, and the grace not over. Returns "" when it may, else why not.
 */
export function resumable(stored, storedClaims, claims, now, grace) {
  if (!stored || typeof stored !== "object") return "none stored";
  if (!stored.resumeToken || typeof stored.resumeToken !== "string") return "no resume token";
  if (!(typeof stored.lastSeq === "number" && stored.lastSeq >= 0)) return "bad lastSeq";
  if (!claims || !storedClaims) return "tokens unreadable";
  if (claims.sub !== storedClaims.sub || (claims.room || "") !== (storedClaims.room || "")) return "another identity or room";
  if (graceLeft(stored.at, grace, now) <= 0) return "grace over";
  return "";
}

/**
 * newerToken picks the token to reconnect with: the stored one (a
 * token.refresh may have renewed it) when it is for the same identity
 * and room and expires later than the given one, else the given one.
 */
export function newerToken(given, givenClaims, stored, storedClaims) {
  if (!stored || !storedClaims || !givenClaims) return given;
  if (storedClaims.sub !== givenClaims.sub || (storedClaims.room || "") !== (givenClaims.room || "")) return given;
  return (Number(storedClaims.exp) || 0) > (Number(givenClaims.exp) || 0) ? stored : given;
}

// ---- what a viewer gets

/**
 * qualityLabel is the short badge of the video a viewer gets: from the
 * decoded frame height when known (720 and up: HD, 360 and up: SD, else
 * LD), else from track.layer's quality (high, medium, low); "" when
 * neither is known.
 */
export function qualityLabel(quality, frameHeight) {
  const h = Number(frameHeight) || 0;
  if (h > 0) return h >= 720 ? "HD" : h >= 360 ? "SD" : "LD";
  return { high: "HD", medium: "SD", low: "LD" }[quality] || "";
}

