package core

import (
	"errors"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// decodeOptions reject what a typo would produce, so that a misspelt field
// is an error rather than a silently missing value.
var decodeOptions = json.JoinOptions(json.RejectUnknownMembers(true))

// DecodeRequest parses one request line (without its newline). It returns
// the request, or a bad_request response explaining what is wrong. When the
// line is valid JSON with an "id", the error response carries that id.
func DecodeRequest(line []byte) (*Request, *Response) {
	var req Request
	err := json.Unmarshal(line, &req, decodeOptions)
	if err == nil {
		return &req, nil
	}
	resp := ErrorResponse(CodeBadRequest, "%s", describeDecodeError(err))
	// Echo the id if the line is at least an object with a usable id, so a
	// pipelining client can match the error to its request.
	var idOnly struct {
		ID jsontext.Value `json:"id"`
	}
	if json.Unmarshal(line, &idOnly) == nil && len(idOnly.ID) > 0 {
		resp.ID = idOnly.ID
	}
	return nil, &resp
}

func describeDecodeError(err error) string {
	var se *json.SemanticError
	if errors.As(err, &se) {
		field := strings.TrimPrefix(string(se.JSONPointer), "/")
		switch {
		case errors.Is(err, json.ErrUnknownName):
			return "unknown field " + quote(field)
		case field != "" && se.JSONKind != 0:
			want := "a different type"
			if se.GoType != nil {
				want = kindName(se.GoType.Kind().String())
			}
			return "field " + quote(field) + " must be " + want + ", not " + jsonKindName(se.JSONKind)
		}
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return "malformed JSON: " + syn.Err.Error() + " at byte " + itoa(int(syn.ByteOffset))
	}
	return "malformed request: " + err.Error()
}

func quote(s string) string { return "\"" + s + "\"" }

func kindName(goKind string) string {
	switch goKind {
	case "string", "ptr":
		return "a string"
	case "slice":
		return "an array"
	case "bool":
		return "a boolean"
	case "struct":
		return "an object"
	}
	return "a " + goKind
}

func jsonKindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "something else"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// AppendResponse encodes resp as one JSON line, newline included, onto dst.
func AppendResponse(dst []byte, resp *Response) []byte {
	b, err := json.Marshal(resp)
	assert(err == nil, "response must always encode")
	dst = append(dst, b...)
	return append(dst, '\n')
}

// AppendRequest encodes req as one JSON line, newline included, onto dst.
func AppendRequest(dst []byte, req *Request) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return dst, err
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}

// DecodeResponse parses one response line.
func DecodeResponse(line []byte) (*Response, error) {
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
