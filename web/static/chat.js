// The chat panel of the demo pages (studio, watch, co-host): the room's
// history at join (a late joiner sees the conversation), new messages in the
// room's order, deleted ones removed, a form to send.
//
// The server stores and sends a message's text exactly as typed, so the
// text only ever goes into the page through textContent (and el(), which
// makes text nodes): "<b>hi</b>" shows as those nine characters.
import { $, describe, el, roleLabel, setNotice } from "/static/app.js";

const PAGE = 50; // chat.history page (the server's default)
const KEEP = 500; // messages kept in the page; the room keeps its last 500 too

// Message ids ("MS_" and 16 hex digits) sort in the room's order.
const before = (a, b) => a < b;

function clock(at) {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * ChatPanel drives one panel: root holds .chat-list (an <ol>), .chat-empty,
 * .chat-more (a button), .chat-form (an input and a button) and
 * .chat-notice. actions(message, row) returns the controls shown under a
 * message (the studio's moderation); row is their container, to swap them
 * for a confirmation.
 */
export class ChatPanel {
  constructor(root, { actions, idleText = "The chat opens when you join the room." } = {}) {
    this.root = root;
    this.list = root.querySelector(".chat-list");
    this.empty = root.querySelector(".chat-empty");
    this.more = root.querySelector(".chat-more");
    this.form = root.querySelector(".chat-form");
    this.input = this.form.querySelector("input");
    this.button = this.form.querySelector("button");
    this.notice = root.querySelector(".chat-notice");
    this.actions = actions;
    this.idleText = idleText;
    this.client = null;
    this.room = "";
    this.offs = [];
    this.items = new Map(); // message id -> {message, node, row}
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.send();
    });
    this.more.addEventListener("click", () => this.loadEarlier());
    this._enable(false);
    this._render();
  }

  /** attach follows client's room: loads the history, then the notifications. */
  async attach(client) {
    this.detach();
    const room = client.room ? client.room.name : "";
    if (room !== this.room) this.clear(); // another room's conversation
    this.room = room;
    this.client = client;
    this.say("");
    this.offs = [
      client.on("chat.message", ({ message }) => this.add(message)),
      client.on("chat.deleted", ({ id }) => this.remove(id)),
      client.on("reconnecting", () => this._enable(false)),
      client.on("reconnected", () => {
        this._enable(true);
        this.loadHistory(); // what was said (or deleted) meanwhile
      }),
      client.on("disconnected", () => this._enable(false)),
    ];
    this._enable(true);
    this._render();
    await this.loadHistory();
  }

  /** detach stops following the client; the messages stay on screen. */
  detach() {
    for (const off of this.offs) off();
    this.offs = [];
    this.client = null;
    this._enable(false);
    this._render();
  }

  /** closed: no chat any more here (kicked, banned); why shows under the form. */
  closed(why) {
    this.detach();
    this.idleText = "";
    this._render();
    this.say(why, "error");
  }

  /** clear empties the list. */
  clear() {
    this.list.replaceChildren();
    this.items.clear();
    this.say("");
    this._render();
  }

  /** say shows a line under the form (or clears it). */
  say(text, kind = "info") {
    setNotice(this.notice, text, kind);
  }

  _enable(on) {
    this.input.disabled = !on;
    this.button.disabled = !on;
  }

  async loadHistory() {
    const c = this.client;
    if (!c) return;
    let msgs;
    try {
      msgs = await c.chatHistory({ limit: PAGE });
    } catch (err) {
      if (c === this.client) this.say(describe(err), "error");
      return;
    }
    if (c !== this.client) return;
    // Messages deleted while we were away: gone from the newest page.
    const ids = new Set(msgs.map((m) => m.id));
    const whole = msgs.length < PAGE;
    for (const id of [...this.items.keys()]) {
      if (!ids.has(id) && (whole || (msgs.length > 0 && !before(id, msgs[0].id)))) this.remove(id);
    }
    for (const m of msgs) this.add(m, { scroll: false });
    this.more.hidden = whole;
    this._scrollDown();
  }

  async loadEarlier() {
    const c = this.client;
    const oldest = this.items.keys().next().value;
    if (!c || !oldest) return;
    this.more.disabled = true;
    try {
      const msgs = await c.chatHistory({ before: oldest, limit: PAGE });
      const top = this.list.scrollHeight - this.list.scrollTop;
      for (const m of msgs) this.add(m, { scroll: false });
      this.list.scrollTop = this.list.scrollHeight - top;
      this.more.hidden = msgs.length < PAGE;
    } catch (err) {
      this.say(describe(err), "error");
    } finally {
      this.more.disabled = false;
    }
  }

  async send() {
    const c = this.client;
    const text = this.input.value;
    if (!c || text.trim() === "") return;
    this.button.disabled = true;
    try {
      const m = await c.sendChat(text); // sent as typed; no chat.message comes back for it
      this.input.value = "";
      this.say("");
      this.add(m);
    } catch (err) {
      this.say(err.code === 4029 ? "Slow down: at most 5 messages a second." : describe(err), "error");
    } finally {
      if (c === this.client) {
        this.button.disabled = false;
        this.input.focus();
      }
    }
  }

  /** add puts a message in its place in the room's order (once). */
  add(m, { scroll = true } = {}) {
    if (!m || !m.id || this.items.has(m.id)) return;
    const stick = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    const item = this._node(m);
    // Usually the newest: walk from the end.
    const keys = [...this.items.keys()];
    let next = null;
    for (let i = keys.length - 1; i >= 0 && before(m.id, keys[i]); i--) next = keys[i];
    if (next) {
      this.list.insertBefore(item.node, this.items.get(next).node);
      const map = new Map();
      for (const [id, it] of this.items) {
        if (id === next) map.set(m.id, item);
        map.set(id, it);
      }
      this.items = map;
    } else {
      this.list.append(item.node);
      this.items.set(m.id, item);
    }
    while (this.items.size > KEEP) this.remove(this.items.keys().next().value);
    this._render();
    if (scroll && (stick || this._mine(m))) this._scrollDown();
  }

  /** remove takes a message off the list (chat.deleted, or our own delete). */
  remove(id) {
    const item = this.items.get(id);
    if (!item) return;
    item.node.remove();
    this.items.delete(id);
    this._render();
  }

  /** refreshActions rebuilds the controls under the messages (of identity, or all). */
  refreshActions(identity) {
    for (const item of this.items.values()) {
      if (identity && item.message.from.identity !== identity) continue;
      item.row.replaceChildren(...(this.actions ? this.actions(item.message, item.row) : []));
    }
  }

  _mine(m) {
    const me = this.client && this.client.participant;
    return !!me && m.from && m.from.identity === me.identity;
  }

  _node(m) {
    const from = m.from || {};
    const role = from.role || "";
    const who = el("span", { class: "from", title: from.identity });
    who.textContent = from.name || from.identity || "?";
    const text = el("div", { class: "chat-text" });
    text.textContent = m.text; // as typed, never parsed
    const row = el("div", { class: "chat-actions" });
    const node = el("li", { class: this._mine(m) ? "self" : null, "data-id": m.id, "data-from": from.identity, "data-role": role },
      el("div", { class: "chat-head" },
        who,
        from.name && from.name !== from.identity ? el("span", { class: "muted small" }, "@" + from.identity) : null,
        role === "host" || role === "cohost" ? el("span", { class: "badge " + role }, roleLabel[role]) : null,
        this._mine(m) ? el("span", { class: "muted small" }, "(you)") : null,
        el("time", { class: "muted", datetime: m.at || "" }, clock(m.at))),
      text, row);
    const item = { message: m, node, row };
    row.replaceChildren(...(this.actions ? this.actions(m, row) : []));
    return item;
  }

  _render() {
    this.empty.textContent = this.client || this.items.size > 0 ? "No messages yet. Say hello!" : this.idleText;
    this.empty.hidden = this.items.size > 0 || this.empty.textContent === "";
    if (this.items.size === 0) this.more.hidden = true;
  }

  _scrollDown() {
    this.list.scrollTop = this.list.scrollHeight;
  }
}

/** chatPanel makes the ChatPanel of the page's #chat-panel. */
export function chatPanel(opts) {
  return new ChatPanel($("chat-panel"), opts);
}
