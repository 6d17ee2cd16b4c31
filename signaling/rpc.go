package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/relaysfu/relayd/rooms"
)

// JSON-RPC 2.0 error codes, and the contract's own (PROTOCOL.md "Errors").
const (
	CodeParse          = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603

	CodeUnauthenticated = 4001
	CodeForbidden       = 4003
	CodeNotFound        = 4004
	CodeConflict        = 4009
	CodeTooMany         = 4013
	CodeRateLimited     = 4029
)

// Error is a protocol error: a JSON-RPC error object on the socket, and
// {"error": {...}} with the matching HTTP status in the HTTP API.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// Errorf makes a protocol error.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// toError is the one place a refusal of rooms becomes a protocol error:
// its kind gives the code, its message is the client's. Anything else (a
// store that failed) is -32603, without leaking internals.
func toError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	var re *rooms.Error
	if !errors.As(err, &re) {
		return Errorf(CodeInternal, "internal error")
	}
	code := CodeInternal
	switch re.Kind {
	case rooms.ErrInvalid:
		code = CodeInvalidParams
	case rooms.ErrForbidden:
		code = CodeForbidden
	case rooms.ErrNotFound:
		code = CodeNotFound
	case rooms.ErrConflict:
		code = CodeConflict
	case rooms.ErrTooMany:
		code = CodeTooMany
	case rooms.ErrRateLimited:
		code = CodeRateLimited
	}
	if code == CodeInternal {
		return Errorf(CodeInternal, "internal error")
	}
	return Errorf(code, "%s", re.Msg)
}

// message is any JSON-RPC message, decoded loosely so that each field's
// validity can be judged (and answered) separately.
type message struct {
	JSONRPC json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

// nullID is the id of errors about messages whose id can't be known.
var nullID = json.RawMessage("null")

// validID reports whether raw is a JSON-RPC id: a string, a number or null.
func validID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

// parse decodes one frame. It returns the message, or the error to answer
// and the id to answer it with.
func parse(frame []byte) (*message, json.RawMessage, *Error) {
	trimmed := bytes.TrimSpace(frame)
	if !json.Valid(trimmed) {
		return nil, nullID, Errorf(CodeParse, "parse error")
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		// A batch (array) or a scalar: one error, id null.
		return nil, nullID, Errorf(CodeInvalidRequest, "invalid request: batches are not supported; send one object per frame")
	}
	var m message
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return nil, nullID, Errorf(CodeInvalidRequest, "invalid request")
	}
	id := m.ID
	if id != nil && !validID(id) {
		return nil, nullID, Errorf(CodeInvalidRequest, "invalid request: id must be a string, a number or null")
	}
	if id == nil {
		id = nullID
	}
	if string(m.JSONRPC) != `"2.0"` {
		return nil, id, Errorf(CodeInvalidRequest, `invalid request: jsonrpc must be "2.0"`)
	}
	if m.Method == nil && (m.Result != nil || m.Error != nil) {
		return &m, id, nil // a response to one of our requests
	}
	if len(m.Method) == 0 || m.Method[0] != '"' {
		return nil, id, Errorf(CodeInvalidRequest, "invalid request: method must be a string")
	}
	if len(m.Params) > 0 && m.Params[0] != '{' && string(m.Params) != "null" {
		return nil, id, Errorf(CodeInvalidParams, "invalid params: params must be an object")
	}
	return &m, id, nil
}

// decodeParams decodes params (absent or null: {}) into dst; a type error
// names the field.
func decodeParams(raw json.RawMessage, dst any) *Error {
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return Errorf(CodeInvalidParams, "invalid params: must be an object")
			}
			return Errorf(CodeInvalidParams, "invalid params: %s must be %s", te.Field, jsonType(te.Type, te.Value))
		}
		return Errorf(CodeInvalidParams, "invalid params: %v", err)
	}
	return nil
}

// jsonType names what a field of Go type t takes, in JSON's words (the Go
// type, e.g. *[]signaling.adminDest, means nothing to a client); value is
// what was given, as encoding/json describes it ("number 1e300").
func jsonType(t reflect.Type, value string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if strings.HasPrefix(value, "number") {
			return "a number in range" // a fraction for an integer, or too big
		}
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      string `json:"id,omitempty"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

func encodeResult(id json.RawMessage, result any) []byte {
	if result == nil {
		result = struct{}{}
	}
	b, err := json.Marshal(response{JSONRPC: "2.0", ID: id, Result: result})
	if err != nil {
		return encodeError(id, Errorf(CodeInternal, "internal error"))
	}
	return b
}

func encodeError(id json.RawMessage, e *Error) []byte {
	b, _ := json.Marshal(response{JSONRPC: "2.0", ID: id, Error: e})
	return b
}

func encodeNotification(method string, params any) []byte {
	b, _ := json.Marshal(request{JSONRPC: "2.0", Method: method, Params: params})
	return b
}

func encodeRequest(id, method string, params any) []byte {
	b, _ := json.Marshal(request{JSONRPC: "2.0", ID: id, Method: method, Params: params})
	return b
}
