package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxBody is the largest request body accepted; larger ones get 413.
const maxBody = 64 << 10

// decodeJSON reads r's body into dst strictly: the content type must be
// JSON, the body at most maxBody bytes, one JSON object with no unknown
// fields, no fields of the wrong type and nothing after it. An empty body
// is allowed only when allowEmpty (routes whose body is all optional).
// Field names are matched exactly and may appear once (checkJSONKeys).
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge, Detail: fmt.Sprintf("request body is larger than %d bytes", maxBody)}
		}
		return errBadRequest(codeBadRequest, "cannot read request body")
	}
	if len(bytes.TrimSpace(body)) == 0 && allowEmpty {
		return nil
	}
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errBadRequest(codeInvalidJSON, "request body is empty; a JSON object is required")
	}
	if !utf8.Valid(body) {
		return errBadRequest(codeInvalidJSON, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errBadRequest(codeInvalidJSON, describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest(codeInvalidJSON, "request body has data after the JSON object")
	}
	if err := checkJSONKeys(body, dst); err != nil {
		return errBadRequest(codeInvalidJSON, err.Error())
	}
	return nil
}

func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMediaType,
			Detail: fmt.Sprintf("Content-Type must be application/json, got %q", ct)}
	}
	return nil
}

// describeJSONError says what is wrong with a body in terms of the API,
// without echoing the body.
func describeJSONError(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, not a JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("request body must be a JSON object, not a JSON %s", te.Value)
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "malformed JSON: unexpected end of body"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "invalid JSON body"
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int64", "int", "int32":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	default:
		return "a " + goKind
	}
}

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal response: %v", err)) // a bug: response types always marshal
	}
	writeRaw(w, status, "application/json", body)
}

func writeRaw(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
