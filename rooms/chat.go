package rooms

// Chat, bans and kicks: a room's moderation (PROTOCOL.md "Chat").

import (
	"slices"
	"sync"
	"time"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/sfu"
)

// Chat limits. 2000 characters is the contract's; 5 messages a second with
// bursts of 10 per member lets a person type fast and paste a few lines,
// and stops a script from flooding a room of viewers.
const (
	ChatMaxChars = 2000
	ChatRate     = 5
	ChatBurst    = 10
	// HistoryLimit is chat.history's default page, HistoryMax its largest.
	HistoryLimit = 50
	HistoryMax   = 200
)

// kickedCode and kickedReason close a kicked member's session (the
// contract's 4003).
const (
	kickedCode   = 4003
	kickedReason = "kicked by the host"
)

// roomChat orders a room's messages: each is appended and queued for
// delivery under mu, so every member gets them in the order of their ids,
// and delivered after mu is released (ordered).
type roomChat struct {
	mu  sync.Mutex
	out ordered
}

func (r *Rooms) chatOf(room string) *roomChat {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.chats[room]
	if c == nil {
		c = &roomChat{}
		r.chats[room] = c
	}
	return c
}

// ChatSend sends text (1-ChatMaxChars characters: the transport checks
// the params) to the member's room: the others get ChatMessage, the member
// gets the stored message back. Over the member's chat rate:
// ErrRateLimited.
func (m *Member) ChatSend(text string) (chat.Message, error) {
	if err := m.inRoom(); err != nil {
		return chat.Message{}, err
	}
	if !m.chat.Allow() {
		m.r.metrics.Chat.WithLabelValues("rate_limited").Inc()
		return chat.Message{}, errorf(ErrRateLimited, "rate limited: at most %d chat messages per second", ChatRate)
	}
	room := m.p.Room()
	rc := m.r.chatOf(room.Name())
	rc.mu.Lock()
	msg, err := m.r.chat.Append(chat.Message{
		Room: room.Name(), BroadcastID: room.BroadcastID(),
		From: chat.Sender{Identity: m.identity, Name: m.name, Role: string(m.p.Role())},
		Text: text,
		At:   time.Now().UTC(),
	})
	if err == nil {
		rc.out.push(m.r.fanOut(room, m.p, ChatMessage{Message: msg}))
	}
	rc.mu.Unlock()
	if err != nil {
		m.log.Error("chat append", "err", err)
		return chat.Message{}, err
	}
	rc.out.drain()
	m.r.metrics.Chat.WithLabelValues("sent").Inc()
	return msg, nil
}

// fanOut returns what tells ev to every member of room but except.
func (r *Rooms) fanOut(room *sfu.Room, except *sfu.Participant, ev Event) func() {
	return func() {
		for _, m := range r.roomMembers(room, except) {
			m.deliver(ev)
		}
	}
}

// pageSize is a history page's size: limit, HistoryLimit when 0 (or
// less), at most HistoryMax.
func pageSize(limit int) int {
	if limit <= 0 {
		limit = HistoryLimit
	}
	return min(limit, HistoryMax)
}

// ChatHistory returns up to limit messages (0: HistoryLimit; at most
// HistoryMax) of the member's room's broadcast before the message id
// before ("" the newest), newest last.
func (m *Member) ChatHistory(before string, limit int) ([]chat.Message, error) {
	if err := m.inRoom(); err != nil {
		return nil, err
	}
	msgs, err := m.r.chat.History(m.room, m.p.Room().BroadcastID(), before, pageSize(limit))
	if err != nil {
		m.log.Error("chat history", "err", err)
		return nil, err
	}
	return msgs, nil
}

// ChatDelete deletes a message of the host's room: the others get
// ChatDeleted.
func (m *Member) ChatDelete(id string) error {
	if err := m.hostOnly(); err != nil {
		return err
	}
	room := m.p.Room()
	rc := m.r.chatOf(room.Name())
	rc.mu.Lock()
	err := m.r.chat.Delete(room.Name(), room.BroadcastID(), id)
	if err == nil {
		rc.out.push(m.r.fanOut(room, m.p, ChatDeleted{ID: id}))
	}
	rc.mu.Unlock()
	if err != nil {
		return fromChat(err, id)
	}
	rc.out.drain()
	m.r.metrics.Chat.WithLabelValues("deleted").Inc()
	return nil
}

func (r *Rooms) banned(room, identity string) bool {
	r.banMu.Lock()
	defer r.banMu.Unlock()
	return r.bans[room][identity]
}

func (r *Rooms) ban(room, identity string) {
	r.banMu.Lock()
	defer r.banMu.Unlock()
	if r.bans[room] == nil {
		r.bans[room] = map[string]bool{}
	}
	r.bans[room][identity] = true
}

// banList returns the identities banned from room, sorted.
func (r *Rooms) banList(room string) []string {
	r.banMu.Lock()
	defer r.banMu.Unlock()
	var list []string
	for identity := range r.bans[room] {
		list = append(list, identity)
	}
	slices.Sort(list)
	return list
}

// unban forgets a room's bans: they end with its broadcast.
func (r *Rooms) unban(room string) {
	r.banMu.Lock()
	defer r.banMu.Unlock()
	delete(r.bans, room)
}

// Kick takes identity out of the host's room (kick). The host cannot
// kick itself; nobody is kicked from an ended room (ErrConflict).
func (m *Member) Kick(identity string, ban bool) error {
	if err := m.hostOnly(); err != nil {
		return err
	}
	if identity == m.identity {
		return errorf(ErrForbidden, "forbidden: the host cannot kick itself")
	}
	room := m.p.Room()
	if room.Status().Ended() {
		return errorf(ErrConflict, "room has ended")
	}
	return m.r.kick(room, identity, ban, kickedReason)
}

// kick takes identity out of room, its session closed with 4003 and
// reason. The contract's relay section allows one identity twice in a
// room, as a direct participant and as a relay (the role tells them
// apart): a kick addresses the identity, so both go.
//   - Its direct participant: its stage ends (its accepted invitation is
//     removed), the relay it sources stops, its tracks are unpublished,
//     and its session closes with 4003. The host's leaves the room
//     waiting_reconnect, as any host leaving (only an admin kicks it).
//   - Its relay participant(s) in this room: each leaves the room
//     (track.unpublished, participant.left), and its relay drops this
//     destination (relay.event disconnect naming the room, at the source).
//
// With ban, the identity's joins to this room are refused (4003) until the
// room's broadcast ends, its relays' joins too (the publish gate refuses a
// banned identity); an absent identity can be banned ahead; a banned host
// ends the room (stopped_by_admin). Without ban, an identity that is in
// the room neither way is ErrNotFound.
func (r *Rooms) kick(room *sfu.Room, identity string, ban bool, reason string) error {
	direct := room.Participant(identity)
	relays := relaysOf(room, identity)
	if direct == nil && len(relays) == 0 && !ban {
		return errorf(ErrNotFound, "%s is not in the room", identity)
	}
	if ban {
		r.ban(room.Name(), identity)
		r.persist(room, room.Info(false)) // the ban outlives a restart
	}
	if direct == nil && len(relays) == 0 {
		r.bannedHost(room, identity, ban)
		return nil
	}
	if r.isCohost(room.Name(), identity) {
		// Its relays into this room lose the gate with it (applyInvitation).
		if _, err := r.inv.Remove(room.Name(), room.Host(), identity); err != nil {
			r.log.Warn("ending a kicked co-host's stage", "room", room.Name(), "participant", identity, "err", err)
		}
	}
	if direct != nil {
		r.relays.SourceGone(direct)
		direct.Remove(kickedCode, reason)
	}
	for _, p := range relays {
		p.Remove(kickedCode, reason) // gone already when its invitation ended
	}
	r.bannedHost(room, identity, ban)
	return nil
}

// bannedHost ends room (stopped_by_admin) when identity, banned, is its
// host: the show cannot go on (1.1 §7).
func (r *Rooms) bannedHost(room *sfu.Room, identity string, ban bool) {
	if ban && identity == room.Host() {
		room.End(sfu.EndStoppedByAdmin)
	}
}
