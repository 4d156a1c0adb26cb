package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// checkJSONKeys refuses what encoding/json would quietly accept: a name that
// matches a field only when case is ignored ("Amount" for "amount") and a
// name given twice ({"amount":1,"amount":1000}), at any depth. Both make the
// operation the ledger applies differ from the one a first-wins or
// case-sensitive reader in front of the service (a gateway, an audit log)
// sees in the same body. body is valid JSON when this is called.
func checkJSONKeys(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return checkValue(dec, fieldNames(reflect.TypeOf(dst)), 0)
}

// fieldNames is the set of JSON names of t's fields (t a struct or a pointer
// to one), or nil when t is not a struct: then names are not checked.
func fieldNames(t reflect.Type) map[string]bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	return names
}

// checkValue reads one JSON value from dec. Objects at depth 0 are checked
// against names (when not nil); objects at every depth for repeated names.
func checkValue(dec *json.Decoder, names map[string]bool, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if seen[key] {
				return fmt.Errorf("field %q appears more than once", key)
			}
			seen[key] = true
			if depth == 0 && names != nil && !names[key] {
				return fmt.Errorf("unknown field %q (field names are case-sensitive)", key)
			}
			if err := checkValue(dec, nil, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, nil, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}
