package signaling

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
)

// rpcSeeds are frames of the contract, good and bad, for the JSON-RPC fuzz
// targets.
var rpcSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"join","params":{}}`,
	`{"jsonrpc":"2.0","id":"a-1","method":"join"}`,
	`{"jsonrpc":"2.0","id":2,"method":"trickle","params":{"target":"publisher","candidate":{"candidate":"candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0","sdpMid":"0","sdpMLineIndex":0}}}`,
	`{"jsonrpc":"2.0","id":3,"method":"trickle","params":{"target":"subscriber","candidate":null}}`,
	`{"jsonrpc":"2.0","id":4,"method":"invitation.create","params":{"user":"bob"}}`,
	`{"jsonrpc":"2.0","id":5,"method":"invitation.list","params":{"status":"pending"}}`,
	`{"jsonrpc":"2.0","id":6,"method":"invitation.accept","params":{"id":"inv_0123456789abcdef"}}`,
	`{"jsonrpc":"2.0","id":7,"method":"chat.send","params":{"text":"hello"}}`,
	`{"jsonrpc":"2.0","id":8,"method":"chat.history","params":{"limit":10}}`,
	`{"jsonrpc":"2.0","id":9,"method":"relay.start","params":{"destinations":[{"room":"r2","token":"x.y.z"}]}}`,
	`{"jsonrpc":"2.0","id":10,"method":"participant.kick","params":{"identity":"bob"}}`,
	`{"jsonrpc":"2.0","id":11,"method":"leave"}`,
	`{"jsonrpc":"2.0","method":"trickle","params":{"target":"publisher","candidate":null}}`,
	`{"jsonrpc":"2.0","id":"s1","result":{"sdp":"v=0"}}`,
	`{"jsonrpc":"2.0","id":"s1","error":{"code":-32000,"message":"no"}}`,
	`{"jsonrpc":"2.0","id":1.50,"method":"nope"}`,
	`{"jsonrpc":"2.0","id":null,"method":"join"}`,
	`{"jsonrpc":"1.0","id":7,"method":"join"}`,
	`{"jsonrpc":"2.0","id":{"a":1},"method":"join"}`,
	`{"jsonrpc":"2.0","id":8,"method":5}`,
	`{"jsonrpc":"2.0","id":10,"method":"offer","params":["v=0"]}`,
	`[{"jsonrpc":"2.0","id":4,"method":"join"}]`,
	`[]`, `42`, `"x"`, `null`, `hello`, `{"jsonrpc":"2.0","id":3,"method":`, ``, " \t\n",
}

// FuzzParse checks the frame parser: every frame is either a message or one
// error, answered with an id that is a string, a number or null; the error
// is one of the three a frame can earn; what parses is a request with a
// string method and object (or null) params, or a response; and every
// answer it leads to is valid JSON carrying that id.
func FuzzParse(f *testing.F) {
	for _, s := range rpcSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, id, perr := parse(frame)
		if (m == nil) == (perr == nil) {
			t.Fatalf("parse(%q) = message %v, error %v: want exactly one", frame, m, perr)
		}
		if !json.Valid(id) || !validID(id) {
			t.Fatalf("parse(%q): answer id %q is not a string, number or null", frame, id)
		}
		if perr != nil {
			switch perr.Code {
			case CodeParse, CodeInvalidRequest, CodeInvalidParams:
			default:
				t.Fatalf("parse(%q): error code %d", frame, perr.Code)
			}
			checkAnswer(t, encodeError(id, perr), id)
			return
		}
		if string(m.JSONRPC) != `"2.0"` {
			t.Fatalf("parse(%q): jsonrpc %s accepted", frame, m.JSONRPC)
		}
		if m.Method == nil {
			if m.Result == nil && m.Error == nil {
				t.Fatalf("parse(%q): neither a request nor a response", frame)
			}
			return
		}
		var method string
		if err := json.Unmarshal(m.Method, &method); err != nil {
			t.Fatalf("parse(%q): method %s is not a string: %v", frame, m.Method, err)
		}
		if len(m.Params) > 0 && m.Params[0] != '{' && string(m.Params) != "null" {
			t.Fatalf("parse(%q): params %s accepted", frame, m.Params)
		}
		// The handlers' decoding of those params, with fields of each kind.
		var params struct {
			S  *string                   `json:"sdp"`
			N  *int                      `json:"limit"`
			O  *struct{ A string }       `json:"candidate"`
			L  *[]struct{ Room *string } `json:"destinations"`
			RM json.RawMessage           `json:"metadata"`
		}
		if err := decodeParams(m.Params, &params); err != nil && err.Code != CodeInvalidParams {
			t.Fatalf("decodeParams(%s): code %d", m.Params, err.Code)
		} else if err != nil {
			if goTypeInMessage(err.Message) {
				t.Fatalf("decodeParams(%s): error %q names a Go type", m.Params, err.Message)
			}
			checkAnswer(t, encodeError(id, err), id)
		}
		checkAnswer(t, encodeResult(id, map[string]string{"method": method}), id)
	})
}

// checkAnswer checks that frame is a JSON-RPC 2.0 response with id.
func checkAnswer(t *testing.T, frame []byte, id json.RawMessage) {
	t.Helper()
	var r struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(frame, &r); err != nil {
		t.Fatalf("answer %q is not JSON: %v", frame, err)
	}
	if r.JSONRPC != "2.0" || !sameJSON(r.ID, id) {
		t.Fatalf("answer %s: want jsonrpc 2.0 and id %s", frame, id)
	}
}

// sameJSON reports whether a and b are the same JSON value (numbers as
// written: 1.50 is not 1.5, as the contract echoes ids as given).
func sameJSON(a, b json.RawMessage) bool {
	decode := func(raw json.RawMessage) (any, bool) {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		return v, d.Decode(&v) == nil
	}
	va, oka := decode(a)
	vb, okb := decode(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

// goType matches what encoding/json says of a Go type (string, *int,
// []signaling.adminDest, struct { ... }) after "must be", where an error
// meant for a client must speak JSON ("a string", "an array").
var goType = regexp.MustCompile(`must be (\*|\[\]|struct|map\[|u?int|float|bool\b|string\b|[A-Za-z0-9_]+\.[A-Za-z])`)

// goTypeInMessage reports whether an error message names a Go type.
func goTypeInMessage(msg string) bool { return goType.MatchString(msg) }

// A field of the wrong type is named in JSON's words (the Go type used to
// leak: "must be struct { Identity string ... }").
func TestDecodeParamsNamesJSONTypes(t *testing.T) {
	var dst struct {
		Name  string                    `json:"name"`
		Limit *int                      `json:"limit"`
		On    bool                      `json:"on"`
		Dests *[]struct{ Room *string } `json:"destinations"`
		Src   *struct{ Room string }    `json:"source"`
	}
	for _, tc := range []struct{ params, want string }{
		{`[]`, "invalid params: must be an object"},
		{`5`, "invalid params: must be an object"},
		{`{"name":5}`, "invalid params: name must be a string"},
		{`{"limit":"10"}`, "invalid params: limit must be a number"},
		{`{"limit":1.5}`, "invalid params: limit must be a number in range"},
		{`{"limit":1e300}`, "invalid params: limit must be a number in range"},
		{`{"on":"yes"}`, "invalid params: on must be true or false"},
		{`{"destinations":{}}`, "invalid params: destinations must be an array"},
		{`{"destinations":[{"room":1}]}`, "invalid params: destinations.Room must be a string"},
		{`{"source":[]}`, "invalid params: source must be an object"},
	} {
		err := decodeParams(json.RawMessage(tc.params), &dst)
		if err == nil || err.Code != CodeInvalidParams || err.Message != tc.want {
			t.Errorf("%s: %v, want %q", tc.params, err, tc.want)
		}
	}
}
