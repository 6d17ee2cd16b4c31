package signaling

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/relaysfu/relayd/chat"
	"github.com/relaysfu/relayd/rooms"
)

// The chat's limits, as the params are checked (rooms holds the rate).
const chatMaxChars = rooms.ChatMaxChars

func init() {
	handlers["chat.send"] = (*session).chatSend
	handlers["chat.history"] = (*session).chatHistory
	handlers["chat.delete"] = (*session).chatDelete
	handlers["participant.kick"] = (*session).kick
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
	return reply(s.member.ChatSend(*p.Text))
}

func (s *session) chatHistory(raw json.RawMessage) (any, *Error) {
	var p struct {
		Before *string `json:"before"`
		Limit  *int    `json:"limit"`
	}
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	limit := 0 // rooms' default
	if p.Limit != nil {
		if *p.Limit < 1 {
			return nil, Errorf(CodeInvalidParams, "invalid params: limit must be 1-%d", rooms.HistoryMax)
		}
		limit = *p.Limit
	}
	before := ""
	if p.Before != nil {
		before = *p.Before
	}
	msgs, err := s.member.ChatHistory(before, limit)
	if err != nil {
		return nil, toError(err)
	}
	return map[string]any{"messages": newestThatFit(msgs, historyBudget)}, nil
}

// historyBudget bounds the messages of one chat.history result, so that
// its frame stays within the 64 KiB a frame may have (PROTOCOL.md: a
// client may hold the server to it too); the rest of the frame (the
// envelope, the request's id) gets the remaining KiB. 200 messages of
// 2,000 characters would be ~400 KB.
const historyBudget = maxFrame - 1024

// newestThatFit returns the newest of msgs (oldest first) whose JSON fits
// in budget bytes: a page cut short by size, which the client pages back
// from as from any other (before: the oldest id it got).
func newestThatFit(msgs []chat.Message, budget int) []chat.Message {
	used := 2 // []
	for i := len(msgs) - 1; i >= 0; i-- {
		b, err := json.Marshal(msgs[i])
		if err != nil || used+len(b)+1 > budget {
			return msgs[i+1:]
		}
		used += len(b) + 1 // and a comma
	}
	return msgs
}

func (s *session) chatDelete(raw json.RawMessage) (any, *Error) {
	id, perr := decodeID(raw)
	if perr != nil {
		return nil, perr
	}
	return done(s.member.ChatDelete(id))
}

// kick: participant.kick {identity, ban?} (rooms' Member.Kick says what
// it does to a direct participant and to a relay of that identity).
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
	return done(s.member.Kick(*p.Identity, p.Ban != nil && *p.Ban))
}
