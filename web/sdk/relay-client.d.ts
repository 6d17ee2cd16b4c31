// Type declarations of relay-client.js, the browser client of relayd's wire
// protocol (docs/protocol.md, versions 1.0 and 1.1).

export declare const ErrorCode: Readonly<{
  PARSE_ERROR: -32700;
  INVALID_REQUEST: -32600;
  METHOD_NOT_FOUND: -32601;
  INVALID_PARAMS: -32602;
  INTERNAL_ERROR: -32603;
  UNAUTHENTICATED: 4001;
  FORBIDDEN: 4003;
  NOT_FOUND: 4004;
  CONFLICT: 4009;
  TOO_MANY: 4013;
  RATE_LIMITED: 4029;
  /** Client side: the socket is not open, or closed before the answer. */
  CLIENT_CLOSED: -1;
  /** Client side: no answer in time. */
  CLIENT_TIMEOUT: -2;
  /** Client side: the call does not fit the client's state. */
  CLIENT_STATE: -3;
  /** Client side: getUserMedia or a PeerConnection failed. */
  CLIENT_MEDIA: -4;
}>;

/** The word of an error code ("forbidden" for 4003). */
export declare function errorName(code: number): string;

/** Every failure the client reports. */
export declare class RelayError extends Error {
  constructor(code: number, message?: string, opts?: { method?: string; data?: unknown; cause?: unknown });
  /** JSON-RPC (-327xx), relayd (4xxx) or client (-1..-4) code. */
  readonly code: number;
  /** The server's message, without the method prefix. */
  readonly serverMessage: string;
  /** The method whose call failed. */
  readonly method?: string;
  readonly data?: unknown;
  /** The word of the code. */
  readonly codeName: string;
}

/** The WebSocket closed, or never opened (a refused token shows as 1006). */
export declare class ConnectionError extends RelayError {
  readonly closeCode: number;
  readonly reason: string;
}

export type RelayStateWord = "idle" | "connecting" | "running" | "failure";
export type RelayErrorWord =
  | "none"
  | "server_error_response"
  | "server_no_response"
  | "no_resource_available"
  | "failed_join_src"
  | "failed_join_dest"
  | "failed_packet_received_from_src"
  | "failed_packet_sent_to_dest"
  | "server_connection_lost"
  | "internal_error"
  | "src_token_expired"
  | "dest_token_expired";
export type RelayEventWord =
  | "disconnect"
  | "connected"
  | "joined_src_channel"
  | "joined_dest_channel"
  | "sent_to_dest_channel"
  | "received_video_packet_from_src"
  | "received_audio_packet_from_src"
  | "update_dest_channel"
  | "update_dest_channel_refused"
  | "update_dest_channel_not_change"
  | "update_dest_channel_is_nil"
  | "video_profile_update"
  | "pause_send_packet_to_dest_channel_success"
  | "pause_send_packet_to_dest_channel_failed"
  | "resume_send_packet_to_dest_channel_success"
  | "resume_send_packet_to_dest_channel_failed"
  // relayd's own, 1.1 only: the source's socket was lost (100), and it resumed (101).
  | "src_reconnecting"
  | "src_resumed";

/** Relay states and their codes (idle 0, connecting 1, running 2, failure 3). */
export declare const RelayState: Readonly<Record<RelayStateWord, number>>;
/** Relay errors and their codes (none 0 ... dest_token_expired 11). */
export declare const RelayErrorCode: Readonly<Record<RelayErrorWord, number>>;
/** Relay events and their codes (disconnect 0 ... resume_..._failed 15). */
export declare const RelayEvent: Readonly<Record<RelayEventWord, number>>;
export declare function relayStateName(code: number): RelayStateWord | undefined;
export declare function relayErrorName(code: number): RelayErrorWord | undefined;
export declare function relayEventName(code: number): RelayEventWord | undefined;

export type Role = "host" | "cohost" | "viewer" | "relay";
export type RoomStatus = "idle" | "live" | "waiting_reconnect" | "ended" | "recorded";
export type EndReasonWord = "host_left" | "host_timeout" | "stopped_by_admin" | "server_shutdown" | "node_lost";

/** Why a room ended: the words of the room object's endReason. */
export declare const EndReason: Readonly<{
  HOST_LEFT: "host_left";
  HOST_TIMEOUT: "host_timeout";
  STOPPED_BY_ADMIN: "stopped_by_admin";
  SERVER_SHUTDOWN: "server_shutdown";
  NODE_LOST: "node_lost";
}>;

/** A JWT's claims, read without checking the signature (the server does); null when token is not a JWT. */
export declare function tokenClaims(token: string): { sub?: string; room?: string; role?: string; exp?: number; [claim: string]: unknown } | null;

export interface Track {
  id: string;
  /** The publisher's identity. */
  participant: string;
  kind: "audio" | "video";
  codec: string;
  mid?: string;
  /** 1.1 servers: the publisher (or an operator) muted it. */
  muted?: boolean;
  /** 1.1, simulcast video: its layers, lowest first (sizes from the last keyframe). */
  layers?: Layer[];
}

export type Quality = "low" | "medium" | "high";

/** A simulcast layer of a track (1.1). */
export interface Layer {
  rid: string;
  quality: Quality;
  width?: number;
  height?: number;
  maxBitrate?: number;
}

/** What a subscriber asks of one received track (track.settings, 1.1). 0 = no limit. */
export interface TrackSettings {
  quality?: Quality | "auto";
  maxWidth?: number;
  maxHeight?: number;
  paused?: boolean;
}

export interface Participant {
  identity: string;
  name: string;
  role: Role;
  tracks: Track[];
  /** For role "relay": the room the stream comes from. */
  relayFrom?: { room: string };
}

export interface Room {
  name: string;
  host: string;
  status: RoomStatus;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  title?: string;
  metadata?: unknown;
  participants?: Participant[];
  numParticipants?: number;
  viewers?: number;
  /** 1.1 servers: the current broadcast ("BC_" + 16 hex). */
  broadcastId?: string;
  /** While ended or recorded, on servers that say why. */
  endReason?: EndReasonWord | string;
  /** Servers that tell it: tracks published now are recorded (absent: unknown). */
  recording?: boolean;
  /** Servers that list them in the room object: the finished recordings. */
  recordings?: Recording[];
}

/** A finished recording: one WebM per publishing participant. */
export interface Recording {
  name: string;
  participant: string;
  size: number;
  /** Seconds. */
  duration: number;
  tracks: string[];
  startedAt: string;
  /** The download path; add ?token=<a token of the room> to play it in a <video>. */
  url: string;
  broadcastId?: string;
  /** The server was killed while recording; the file was repaired. */
  cut?: boolean;
}

export type InvitationStatus = "pending" | "accepted" | "rejected" | "cancelled" | "expired" | "removed" | "left";

export interface Invitation {
  id: string;
  room: string;
  host: string;
  user: string;
  status: InvitationStatus;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  /** The room's broadcast it was made in. */
  broadcastId?: string;
}

export interface RelayDestinationState {
  room: string;
  identity: string;
  state: RelayStateWord;
  code: number;
  error: RelayErrorWord;
  errorCode: number;
  /**
   * Set by the client, not the server: the destination was not joined by
   * the time the relay's state settled, so it failed; the error is the
   * relay's (none running) or what its token tells (expired: 11, else 5).
   * The next relay object (update, pause, stop) says it exactly.
   */
  inferred?: boolean;
  /** Set by the client: a disconnect event (0) named this room: the relay left it. */
  left?: boolean;
}

export interface Relay {
  id: string;
  source: { room: string; identity: string };
  state: RelayStateWord;
  code: number;
  error: RelayErrorWord;
  errorCode: number;
  paused: boolean;
  destinations: RelayDestinationState[];
}

export interface RelayDestination {
  room: string;
  /** A token for that room; its sub is the identity the stream takes there. */
  token: string;
}

/** A chat message. text is exactly as sent: show it with textContent. */
export interface ChatMessage {
  /** "MS_" and 16 hex digits; ids sort in the room's order, across its broadcasts. */
  id: string;
  room: string;
  /** The room's broadcast it was sent in. */
  broadcastId?: string;
  /** The sender, with its role when it sent the message. */
  from: { identity: string; name: string; role: Role };
  text: string;
  /** RFC 3339. */
  at: string;
}

export interface JoinResult {
  /** The version served ("1.0" or "1.1"); absent from servers older than the opt-in. */
  version?: string;
  participant: Participant;
  room: Room | null;
  participants: Participant[];
  tracks: Track[];
  /** ICE servers (TURN) to add to the PeerConnections; [] while the server runs none. */
  iceServers?: RTCIceServer[];
  /** 1.1 sessions: "SE_" + 16 hex. */
  sessionId?: string;
  /** 1.1 sessions: opaque, at most 256 characters. */
  resumeToken?: string;
  /** 1.1 sessions: false for a fresh session. */
  resumed?: boolean;
  /** 1.1 sessions: the last seq sent (0 when fresh); the next notification has seq + 1. */
  seq?: number;
  /** 1.1 sessions: a resume missed notifications. */
  gap?: boolean;
}

export interface RemoteTrackEvent {
  /** The room's track object. */
  track: Track;
  /** The publisher (participants.get(participantKey)). */
  participant: Participant;
  /** The key of the publisher in client.participants: identity, or "identity#relay". */
  participantKey: string;
  mediaTrack: MediaStreamTrack;
  /** One stable MediaStream per publisher, holding its received tracks. */
  stream: MediaStream;
  receiver?: RTCRtpReceiver;
}

export interface VideoStat {
  trackId: string;
  participant: string;
  mid?: string;
  framesDecoded: number;
  framesReceived: number;
  frameWidth: number;
  frameHeight: number;
  bytesReceived: number;
  packetsLost: number;
  codec?: string;
}

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "disconnected";

export interface RelayClientEvents {
  "participant.joined": { participant: Participant };
  "participant.left": { participant: Participant };
  "participant.updated": { participant: Participant };
  "track.published": { track: Track };
  "track.unpublished": { track: Track };
  "room.updated": { room: Room };
  "invitation.updated": { invitation: Invitation };
  "relay.state": { relay: string; state: RelayStateWord; code: number; error: RelayErrorWord; errorCode: number; destinations?: RelayDestinationState[] };
  "relay.event": { relay: string; event: RelayEventWord; code: number; room?: string };
  "chat.message": { message: ChatMessage };
  "chat.deleted": { id: string };
  /** 1.1: a received track stopped or started again without renegotiation. */
  "track.stream": { trackId: string; state: "paused" | "active"; reason: "relay_paused" | "publisher_reconnecting" | "bandwidth" | string };
  /** 1.1: a track was muted or unmuted. */
  "track.muted": { trackId: string; muted: boolean; by: "publisher" | "admin" };
  /** 1.1: a fresh token (the client keeps it for its next reconnect) and fresh ICE servers (set on the open PeerConnections). */
  "token.refresh": { token: string; expiresAt: string; iceServers: RTCIceServer[] };
  /** 1.1: the layer a received video track comes in now (client.trackLayers). */
  "track.layer": { trackId: string; quality: Quality; rid?: string; reason: "requested" | "bandwidth" | "publisher" | string };
  /** 1.1: a track object changed (its layers); the kept one is updated. */
  "track.updated": { track: Track };
  /** 1.1: the layers of your own track someone needs; the others' encodings are switched off (options.dynacast). */
  "publisher.layers": { trackId: string; active: string[] };
  /** 1.1: a session resumed after a reload did not get its media back in time: the client goes on as a fresh session. */
  "resume.failed": { reason: string };
  /** 1.1: the client restarts ICE on a PeerConnection (failed, disconnected, the network came back). */
  "ice.restart": { target: "publisher" | "subscriber"; reason: string };
  trickle: { target: "publisher" | "subscriber"; candidate: RTCIceCandidateInit | null };
  /** A remote track arrived and was matched to the room's track. */
  "track.subscribed": RemoteTrackEvent;
  /** A remote track went away (unpublished, participant left, renegotiated out). */
  "track.unsubscribed": RemoteTrackEvent;
  /** The room's status changed (live, waiting_reconnect, ended, ...). */
  "room.status": { status: RoomStatus; previous?: RoomStatus; room: Room };
  /** Your own role changed (viewer -> cohost on an accepted invitation, and back). */
  "role.changed": { role: Role; previous?: Role };
  /** A local track was added to the publisher PC. */
  "local.track": { track: MediaStreamTrack; stream: MediaStream; simulcast?: boolean };
  "pc.state": { target: "publisher" | "subscriber"; state: RTCPeerConnectionState };
  connection: { state: ConnectionState; code?: number; reason?: string; error?: unknown };
  /**
   * The socket was lost; attempt n starts after delay ms. resuming: 1.1,
   * the session is resumed (graceLeft ms left, until deadline, ms since
   * the epoch; 0 when over or unknown).
   */
  reconnecting: { attempt: number; delay: number; error: unknown; reason?: string; resuming?: boolean; graceLeft?: number; deadline?: number };
  /** Rejoined after a socket loss (resumed: true when the session was resumed). */
  reconnected: JoinResult;
  /** The host kicked you: the socket closed with 4003 (or a rejoin was refused: banned). No reconnect follows; "disconnected" comes next. */
  kicked: { code: number; reason: string; room: string };
  /** For good: left, closed, room ended, kicked, replaced, or reconnect gave up. */
  disconnected: { code: number; reason: string; ended: boolean; kicked: boolean; error: unknown };
  error: RelayError | Error;
  "*": { event: string; payload: unknown };
}

export interface RelayClientOptions {
  /**
   * The protocol version asked for at join (default "1.1"; null: none, a
   * 1.0 join). A server that serves 1.0 only ignores it. An automatic
   * rejoin of a host asks for none, so it never starts a new broadcast.
   */
  version?: string | null;
  /** Reconnect and rejoin after a socket loss (default true). */
  reconnect?: boolean;
  maxReconnectAttempts?: number;
  /** First backoff delay in ms (default 500), doubled each attempt up to reconnectMaxDelay (8000). */
  reconnectBaseDelay?: number;
  reconnectMaxDelay?: number;
  /** A fresh token for each reconnect attempt. */
  tokenProvider?: () => string | Promise<string>;
  /** ms before a request fails with CLIENT_TIMEOUT (default 15000; 0: never). */
  requestTimeout?: number;
  iceServers?: RTCIceServer[];
  /** 1.1: send camera video as simulcast (default true): 540p and above q/h/f, 360p-539p q/f; to servers that take it. */
  simulcast?: boolean;
  /** 1.1: switch off the encodings publisher.layers says nobody needs (default true). */
  dynacast?: boolean;
  /** 1.1: resume a lost session with its resume token, keeping the PeerConnections (default true). */
  resume?: boolean;
  /** The server's --reconnect-grace in ms (default 30000): how long a lost session is held; the server does not say it. */
  reconnectGrace?: number;
  /** sessionStorage key to keep the session under, so that a reload of the page resumes it ("" = not kept). */
  resumeKey?: string;
  /** 1.1: restart ICE when a PeerConnection fails (or stays disconnected 2 s) and when the network comes back (default true). */
  iceRestart?: boolean;
}

/** A session kept by a page for its reload (options.resumeKey). */
export interface StoredSession {
  sessionId: string;
  resumeToken: string;
  lastSeq: number;
  token: string;
  /** When the session was last known connected, or lost (ms since the epoch). */
  at: number;
  /** It was publishing. */
  publishing: boolean;
  /** ms the server still holds it. */
  graceLeft: number;
}

export declare function participantKey(p: Pick<Participant, "identity" | "role"> | null | undefined): string;

export declare function getLocalMedia(opts?: { audio?: boolean | MediaTrackConstraints; video?: boolean | MediaTrackConstraints }): Promise<MediaStream>;

export declare class RelayClient {
  /** Make a client and open its socket (no join yet). url: "ws(s)://host/v1/ws" or an http(s) origin. */
  static connect(url: string, token: string, options?: RelayClientOptions): Promise<RelayClient>;
  constructor(options?: RelayClientOptions);

  readonly options: RelayClientOptions;
  readonly connectionState: ConnectionState;
  readonly participant: Participant | null;
  readonly room: Room | null;
  /** The other participants, by participantKey. */
  readonly participants: Map<string, Participant>;
  /** The room's published tracks, by id. */
  readonly tracks: Map<string, Track>;
  readonly remoteTracks: Map<string, { trackId: string; identity: string; mediaTrack: MediaStreamTrack; track: Track | null; participant: Participant | null; stream: MediaStream | null; mid?: string | null }>;
  readonly localStream: MediaStream | null;
  readonly relay: Relay | null;
  /** The version the server serves this session: "1.0" unless the join result said otherwise. */
  readonly version: string;
  /** 1.1: received tracks paused now (track.stream), by track id. */
  readonly trackStreams: Map<string, { state: "paused"; reason: string }>;
  /** 1.1: your own published tracks, by id, as the server tells them (track.published to the publisher, an extension of relayd's). */
  readonly ownTracks: Map<string, Track>;
  /** 1.1: the session's id and resume token, from the join result ("" otherwise). */
  readonly sessionId: string;
  readonly resumeToken: string;
  /** 1.1: the seq of the last notification received (0 before one). */
  readonly lastSeq: number;
  /** The join result's ICE servers (and token.refresh's), added to options.iceServers. */
  readonly iceServers: RTCIceServer[];
  /** 1.1: the last join resumed the session; gap: notifications were lost meanwhile. */
  readonly resumed: boolean;
  readonly gap: boolean;
  /** 1.1: the layer each received video track comes in (track.layer), by track id. */
  readonly trackLayers: Map<string, { quality: Quality | ""; rid: string; reason: string }>;
  /** 1.1: the settings in force per received track (setTrackSettings results). */
  readonly trackSettings: Map<string, TrackSettings & { trackId: string }>;
  /** 1.1: per own track id, the rids publisher.layers asked to send. */
  readonly publisherLayers: Map<string, string[]>;
  readonly joined: boolean;
  /** The host kicked you (socket closed with 4003). */
  readonly kicked: boolean;

  on<K extends keyof RelayClientEvents>(event: K, fn: (ev: RelayClientEvents[K]) => void): () => void;
  off<K extends keyof RelayClientEvents>(event: K, fn: (ev: RelayClientEvents[K]) => void): void;
  once<K extends keyof RelayClientEvents>(event: K): Promise<RelayClientEvents[K]>;
  once<K extends keyof RelayClientEvents>(event: K, fn: (ev: RelayClientEvents[K]) => void): () => void;

  connect(url: string, token: string): Promise<void>;
  /** The session kept under key (options.resumeKey) while the server may still hold it, else null. */
  static storedSession(key: string, opts?: { grace?: number }): StoredSession | null;
  /** ms the server still holds this lost session (0: connected, over, or not resumable). */
  graceLeft(): number;
  /** 1.1: how you want a received track (track.settings); omitted fields keep their value. */
  setTrackSettings(trackId: string, settings: TrackSettings): Promise<TrackSettings & { trackId: string }>;
  /** Any method of the contract; rejects with RelayError. */
  request<T = unknown>(method: string, params?: object, opts?: { timeout?: number }): Promise<T>;

  join(): Promise<JoinResult>;
  mayPublish(): boolean;
  leave(): Promise<void>;
  close(): void;

  publish(opts?: { audio?: boolean; video?: boolean; stream?: MediaStream }): Promise<MediaStream>;
  unpublish(opts?: { stopTracks?: boolean }): Promise<void>;
  streamOf(participantKey: string): MediaStream | undefined;

  videoStats(): Promise<VideoStat[]>;
  getStats(target?: "publisher" | "subscriber"): Promise<RTCStatsReport | null>;

  stopRoom(): Promise<{}>;
  /** Host only: record the room's tracks published from now on (or stop). -32601 from servers without room.record. */
  setRecording(on: boolean): Promise<Room>;
  /** Whether the room object says if it records (a boolean `recording`). */
  recordingKnown(): boolean;
  /** Host only: the target's socket closes with 4003; ban refuses its joins until the room ends. */
  kick(identity: string, opts?: { ban?: boolean }): Promise<{}>;
  /** 1.1: mute or unmute one of your own tracks (track.mute); resolves with the track. */
  muteTrack(trackId: string, muted: boolean): Promise<Track>;
  /** 1.1: your own track of a kind, or undefined. */
  ownTrack(kind: "audio" | "video"): Track | undefined;

  createInvitation(user: string): Promise<Invitation>;
  listInvitations(status?: InvitationStatus): Promise<Invitation[]>;
  acceptInvitation(id: string): Promise<Invitation>;
  rejectInvitation(id: string): Promise<Invitation>;
  cancelInvitation(id: string): Promise<Invitation>;
  removeCohost(user: string): Promise<{}>;
  leaveStage(): Promise<{}>;

  startRelay(destinations: RelayDestination[]): Promise<Relay>;
  updateRelay(destinations: RelayDestination[]): Promise<Relay>;
  stopRelay(): Promise<Relay>;
  pauseRelay(): Promise<Relay>;
  resumeRelay(): Promise<Relay>;

  /** 1-2000 characters; resolves with the message (no "chat.message" for your own). 4029 when too fast. */
  sendChat(text: string): Promise<ChatMessage>;
  /** Newest last; limit defaults to 50 (at most 200); before pages back from a message id. */
  chatHistory(opts?: { before?: string; limit?: number }): Promise<ChatMessage[]>;
  /** Host only; everyone else gets "chat.deleted". */
  deleteChat(id: string): Promise<{}>;
}

export default RelayClient;
