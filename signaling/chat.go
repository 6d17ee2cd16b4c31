package signaling

import (
	"encoding/json"
	"errors"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/sfu"
)

// Chat limits. 2000 characters is the contract's; 5 messages a second with
// bursts of 10 lets a person type fast and paste a few lines, and stops a
// script from flooding a room of viewers.
const (
	chatMaxChars = 2000
	chatRate     = 5
	chatBurst    = 10
	historyLimit = 50  // chat.history's default page
	historyMax   = 200 // and its largest
)

func init() {
	handlers["chat.send"] = (*session).chatSend
	handlers["chat.history"] = (*session).chatHistory
	handlers["chat.delete"] = (*session).chatDelete
	handlers["participant.kick"] = (*session).kick
}

// roomChat orders a room's messages: one append and fan-out at a time, so
// every participant sees them in the same order.
type roomChat struct {
	mu sync.Mutex
}

func (s *Server) chatOf(room string) *roomChat {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[room]
	if c == nil {
		c = &roomChat{}
		s.chats[room] = c
	}
	return c
}

// broadcast sends frame to every session in room but except.
func (s *Server) broadcast(room *sfu.Room, except *sfu.Participant, frame []byte) {
	for _, p := range room.Members() {
		if p == except {
			continue
		}
		if sess := s.sessionOf(p); sess != nil {
			sess.send(frame)
		}
	}
}

func (s *Server) banned(room, identity string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bans[room][identity]
}

func (s *Server) ban(room, identity string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bans[room] == nil {
		s.bans[room] = map[string]bool{}
	}
	s.bans[room][identity] = true
}

// roomEnded forgets a room's bans (a ban lasts until the room ends) and its
// chat lock.
func (s *Server) roomEnded(room string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bans, room)
	delete(s.chats, room)
}

func (s *session) chatSend(raw json.RawMessage) (any, *Error) {
	var p struct {
		Text *string `json:"text"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	if p.Text == nil {
		return nil, Errorf(CodeInvalidParams, "invalid params: text is required")
	}
	if n := utf8.RuneCountInString(*p.Text); n < 1 || n > chatMaxChars {
		return nil, Errorf(CodeInvalidParams, "invalid params: text must be 1-%d characters, got %d", chatMaxChars, n)
	}
	if err := s.inRoom(); err != nil {
		return nil, err
	}
	if !s.chatLimiter.Allow() {
		s.srv.metrics.Chat.WithLabelValues("rate_limited").Inc()
		return nil, Errorf(CodeRateLimited, "rate limited: at most %d chat messages per second", chatRate)
	}
	room := s.p.Room()
	rc := s.srv.chatOf(room.Name())
	rc.mu.Lock()
	defer rc.mu.Unlock()
	m, err := s.srv.chat.Append(chat.Message{
		Room: room.Name(),
		From: chat.Sender{Identity: s.claims.Identity(), Name: s.claims.Name, Role: string(s.p.Role())},
		Text: *p.Text,
		At:   time.Now().UTC(),
	})
	if err != nil {
		s.log.Error("chat append", "err", err)
		return nil, Errorf(CodeInternal, "internal error")
	}
	s.srv.broadcast(room, s.p, encodeNotification("chat.message", map[string]any{"message": m}))
	s.srv.metrics.Chat.WithLabelValues("sent").Inc()
	return m, nil
}

func (s *session) chatHistory(raw json.RawMessage) (any, *Error) {
	var p struct {
		Before *string `json:"before"`
		Limit  *int    `json:"limit"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	limit := historyLimit
	if p.Limit != nil {
		if *p.Limit < 1 {
			return nil, Errorf(CodeInvalidParams, "invalid params: limit must be 1-%d", historyMax)
		}
		limit = min(*p.Limit, historyMax)
	}
	before := ""
	if p.Before != nil {
		before = *p.Before
	}
	if err := s.inRoom(); err != nil {
		return nil, err
	}
	msgs, err := s.srv.chat.History(s.p.Room().Name(), before, limit)
	if err != nil {
		s.log.Error("chat history", "err", err)
		return nil, Errorf(CodeInternal, "internal error")
	}
	return map[string]any{"messages": msgs}, nil
}

func (s *session) chatDelete(raw json.RawMessage) (any, *Error) {
	id, perr := decodeID(raw)
	if perr != nil {
		return nil, perr
	}
	if err := s.hostOnly(); err != nil {
		return nil, err
	}
	room := s.p.Room()
	rc := s.srv.chatOf(room.Name())
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := s.srv.chat.Delete(room.Name(), id); err != nil {
		if errors.Is(err, chat.ErrNotFound) {
			return nil, Errorf(CodeNotFound, "message %s not found", id)
		}
		return nil, Errorf(CodeInternal, "internal error")
	}
	s.srv.broadcast(room, s.p, encodeNotification("chat.deleted", map[string]any{"id": id}))
	s.srv.metrics.Chat.WithLabelValues("deleted").Inc()
	return struct{}{}, nil
}

// kick takes a participant out of the room: its relay stops, its tracks are
// unpublished, its stage ends, and its socket closes with 4003. With ban,
// its joins to this room are refused (4003) until the room ends; an absent
// identity can be banned ahead.
func (s *session) kick(raw json.RawMessage) (any, *Error) {
	var p struct {
		Identity *string `json:"identity"`
		Ban      *bool   `json:"ban"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	if p.Identity == nil || !ValidName(*p.Identity) {
		return nil, Errorf(CodeInvalidParams, "invalid params: identity must be 1-128 of [A-Za-z0-9_.:@-]")
	}
	if err := s.hostOnly(); err != nil {
		return nil, err
	}
	if *p.Identity == s.claims.Identity() {
		return nil, Errorf(CodeForbidden, "forbidden: the host cannot kick itself")
	}
	room := s.p.Room()
	ban := p.Ban != nil && *p.Ban
	target := room.Participant(*p.Identity)
	if target == nil && !ban {
		return nil, Errorf(CodeNotFound, "%s is not in the room", *p.Identity)
	}
	if ban {
		s.srv.ban(room.Name(), *p.Identity)
	}
	if target == nil {
		return struct{}{}, nil
	}
	if s.srv.inv.IsCohost(room.Name(), *p.Identity) {
		if _, err := s.srv.inv.Remove(room.Name(), s.claims.Identity(), *p.Identity); err != nil {
			s.log.Warn("ending a kicked co-host's stage", "err", err)
		}
	}
	sess := s.srv.sessionOf(target)
	s.srv.relays.SourceGone(target)
	target.Leave()
	if sess != nil {
		sess.closeWith(CodeForbidden, "kicked by the host")
	}
	return struct{}{}, nil
}
