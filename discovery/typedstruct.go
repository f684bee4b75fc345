package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/strait-proxy/strait/pipeline"
)

// TypedStructDecoder returns a decoder for a user extension configured with
// xds.type.v3.TypedStruct: the TypedStruct's value is decoded strictly into a fresh T from
// newT (JSON field names from T's json tags; an unknown field is an error naming it), then
// T.Validate runs. T is normally a pointer to the extension's Config struct:
//
//	reg.RegisterNetworkFilter("type.googleapis.com/acme.echo.v1.Echo",
//		discovery.TypedStructDecoder(func() *echo.Config { return &echo.Config{} }))
//
// Numbers travel through protobuf's Struct as float64: integers above 2^53 lose precision.
// Durations are whatever T's field types decode from JSON (a string with a custom type, or
// nanoseconds for time.Duration).
func TypedStructDecoder[T pipeline.NetworkFilterConfig](newT func() T) NetworkFilterDecoder {
	return func(a *anypb.Any) (pipeline.NetworkFilterConfig, error) {
		var ts xdstypev3.TypedStruct
		if a.GetTypeUrl() != TypedStructURL {
			return nil, fmt.Errorf("%w: expected %s, got %q", ErrInvalid, TypedStructURL, a.GetTypeUrl())
		}
		if err := a.UnmarshalTo(&ts); err != nil {
			return nil, fmt.Errorf("%w: TypedStruct: %v", ErrInvalid, err)
		}
		t := newT()
		var l errs
		if err := decodeStruct(ts.GetValue(), &t); err != nil {
			l.add("", err)
			if !onlyUnknownFields(err) {
				return nil, l.err()
			}
		}
		// Validate the fields that did decode too, so every problem is reported at once.
		if err := t.Validate(); err != nil {
			l.add("value", err)
		}
		if len(l.list) > 0 {
			return nil, l.err()
		}
		return t, nil
	}
}

// decodeStruct decodes s into dst (a pointer) strictly, reporting every unknown top-level
// field (with the closest known name), then the first wrong type or unknown nested field.
// Fields are reported under "value". The known fields are decoded even when unknown ones
// are present, so the caller can validate them too (see onlyUnknownFields).
func decodeStruct(s *structpb.Struct, dst any) error {
	var l errs
	known := map[string]any{}
	fields := jsonFields(dst)
	keys := make([]string, 0, len(s.GetFields()))
	for k := range s.GetFields() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if fields != nil && !slices.Contains(fields, k) {
			l.add("value", fmt.Errorf("%w %q%s", ErrUnknownField, k, suggestJSON(dst, k)))
			continue
		}
		known[k] = s.GetFields()[k].AsInterface()
	}
	data, err := json.Marshal(known)
	if err != nil {
		l.add("value", fmt.Errorf("%w: %v", ErrInvalid, err))
		return l.err()
	}
	l.add("", decodeJSONStrict(data, dst))
	return l.err()
}

// onlyUnknownFields reports whether every part of err is an unknown-field error.
func onlyUnknownFields(err error) bool {
	for _, e := range flatten(err) {
		if !errors.Is(e, ErrUnknownField) {
			return false
		}
	}
	return true
}

// jsonFields lists the JSON names of dst's struct fields (nil if dst is not a struct).
func jsonFields(dst any) []string {
	t := reflect.TypeOf(dst)
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
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
			name = f.Name // encoding/json also matches case-insensitively; keep it exact
		}
		out = append(out, name)
	}
	return out
}

func decodeJSONStrict(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonFieldError(err, dst)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &FieldError{Field: "value", Err: fmt.Errorf("%w: trailing data", ErrInvalid)}
	}
	return nil
}

// jsonFieldError turns encoding/json's messages into FieldErrors with our sentinels.
func jsonFieldError(err error, dst any) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return &FieldError{Field: joinPath("value", ute.Field), Err: fmt.Errorf("%w: %s where %s is expected", ErrInvalid, ute.Value, ute.Type)}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &FieldError{Field: "value", Err: fmt.Errorf("%w %s%s", ErrUnknownField, name, suggestJSON(dst, strings.Trim(name, `"`)))}
	}
	return &FieldError{Field: "value", Err: fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(msg, "json: "))}
}

// suggestJSON proposes the closest top-level json tag of dst's struct type.
func suggestJSON(dst any, k string) string {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	best, bestD := "", len(k)/3+1
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		if d := editDistance(strings.ToLower(k), name); d < bestD {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
