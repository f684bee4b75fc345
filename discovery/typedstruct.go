package discovery

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/stream"
)

// TypedStructDecoder returns a decoder for a user extension configured with
// xds.type.v3.TypedStruct: the TypedStruct's value is decoded strictly into a fresh T from
// newT (JSON field names from T's json tags; an unknown field at any depth is an error
// naming its path, with the closest known name), then T.Validate runs. T is normally a
// pointer to the extension's Config struct:
//
//	reg.RegisterNetworkFilter("type.googleapis.com/acme.echo.v1.Echo",
//		discovery.TypedStructDecoder(func() *echo.Config { return &echo.Config{} }))
//
// Numbers travel through protobuf's Struct as float64: integers above 2^53 lose precision.
// Durations are whatever T's field types decode from JSON (a string with a custom type, or
// nanoseconds for time.Duration).
func TypedStructDecoder[T pipeline.NetworkFilterConfig](newT func() T) NetworkFilterDecoder {
	return func(a *anypb.Any) (pipeline.NetworkFilterConfig, error) {
		return decodeTypedStruct(a, newT)
	}
}

// TypedStructHTTPFilterDecoder is TypedStructDecoder for HTTP (stream) filters:
//
//	reg.RegisterHTTPFilter("type.googleapis.com/acme.auth.v1.Auth",
//		discovery.TypedStructHTTPFilterDecoder(func() *auth.Config { return &auth.Config{} }))
func TypedStructHTTPFilterDecoder[T stream.FilterConfig](newT func() T) HTTPFilterDecoder {
	return func(a *anypb.Any) (stream.FilterConfig, error) {
		return decodeTypedStruct(a, newT)
	}
}

func decodeTypedStruct[T interface{ Validate() error }](a *anypb.Any, newT func() T) (T, error) {
	var zero T
	var ts xdstypev3.TypedStruct
	if a.GetTypeUrl() != TypedStructURL {
		return zero, fmt.Errorf("%w: expected %s, got %q", ErrInvalid, TypedStructURL, a.GetTypeUrl())
	}
	if err := a.UnmarshalTo(&ts); err != nil {
		return zero, fmt.Errorf("%w: TypedStruct: %v", ErrInvalid, err)
	}
	t := newT()
	var l errs
	if err := decodeStruct(ts.GetValue(), &t); err != nil {
		l.add("", err)
		if !onlyUnknownFields(err) {
			return zero, l.err()
		}
	}
	// Validate the fields that did decode too, so every problem is reported at once.
	if err := t.Validate(); err != nil {
		l.add("value", err)
	}
	if len(l.list) > 0 {
		return zero, l.err()
	}
	return t, nil
}

// decodeStruct decodes s into dst (a pointer) strictly. Every unknown field at any depth
// is reported with its path under "value" and the closest known name, every value of the
// wrong JSON type with its path; the rest is decoded (so the caller can validate it too,
// see onlyUnknownFields).
func decodeStruct(s *structpb.Struct, dst any) error {
	var l errs
	v := any(map[string]any{})
	if s != nil {
		v = s.AsMap()
	}
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("%w: decodeStruct needs a pointer, got %T", ErrInvalid, dst)
	}
	if !checkJSONValue(v, t.Elem(), "value", &l) {
		return l.err()
	}
	data, err := json.Marshal(v)
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

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkJSONValue checks a generic JSON value (from encoding/json or structpb: objects,
// arrays, strings, float64 or json.Number, bools, nil) against the Go type it will be
// decoded into, as encoding/json would decode it. It reports every unknown object key and
// every type mismatch with its path, and removes them from v (in place) so that decoding
// the rest succeeds. It returns false when v itself cannot be decoded into t (the caller
// drops it). Types with their own UnmarshalJSON or UnmarshalText are decoded by them here,
// so their errors carry the path too.
func checkJSONValue(v any, t reflect.Type, path string, l *errs) bool {
	if v == nil {
		return true // null decodes to the zero value
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		raw, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
		}
		if err != nil {
			l.add(path, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "json: ")))
			return false
		}
		return true
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		s, ok := v.(string)
		if !ok {
			l.add(path, typeMismatch(v, "string"))
			return false
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			l.add(path, fmt.Errorf("%w: %v", ErrInvalid, err))
			return false
		}
		return true
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkJSONValue(v, t.Elem(), path, l)
	case reflect.Interface:
		return true
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			l.add(path, typeMismatch(v, "an object"))
			return false
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := jsonField(t, k)
			if !ok {
				l.add(path, fmt.Errorf("%w %q%s", ErrUnknownField, k, suggestField(t, k)))
				delete(obj, k)
				continue
			}
			if !checkJSONValue(obj[k], ft, path+"."+k, l) {
				delete(obj, k)
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			if _, ok := v.(string); ok {
				return true // []byte from base64, as encoding/json
			}
		}
		arr, ok := v.([]any)
		if !ok {
			l.add(path, typeMismatch(v, "a list"))
			return false
		}
		for i, e := range arr {
			if !checkJSONValue(e, t.Elem(), path+"["+strconv.Itoa(i)+"]", l) {
				arr[i] = nil
			}
		}
		return true
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			l.add(path, typeMismatch(v, "an object"))
			return false
		}
		if t.Key().Kind() != reflect.String {
			return true // encoding/json reports it
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !checkJSONValue(obj[k], t.Elem(), path+"["+strconv.Quote(k)+"]", l) {
				delete(obj, k)
			}
		}
		return true
	case reflect.String:
		if _, ok := v.(string); !ok {
			l.add(path, typeMismatch(v, t.Kind().String()))
			return false
		}
		return true
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			l.add(path, typeMismatch(v, "bool"))
			return false
		}
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		f, ok := jsonNumber(v)
		if !ok {
			l.add(path, typeMismatch(v, t.Kind().String()))
			return false
		}
		if !numberFits(f, t) {
			l.add(path, fmt.Errorf("%w: number %v where %s is expected", ErrInvalid, f, t.Kind()))
			return false
		}
		return true
	}
	return true
}

func jsonNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// numberFits reports whether f decodes into t: integral and in range for integer kinds.
func numberFits(f float64, t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) {
		return false
	}
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return f >= 0 && f < math.Ldexp(1, t.Bits())
	}
	lim := math.Ldexp(1, t.Bits()-1)
	return f >= -lim && f < lim
}

func typeMismatch(v any, want string) error {
	got := "null"
	switch v.(type) {
	case string:
		got = "string"
	case bool:
		got = "bool"
	case float64, json.Number:
		got = "number"
	case []any:
		got = "list"
	case map[string]any:
		got = "object"
	}
	return fmt.Errorf("%w: %s where %s is expected", ErrInvalid, got, want)
}

// jsonFields lists the JSON names of a struct type's fields, as encoding/json names them
// (embedded structs without a tag are flattened).
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name // encoding/json also matches case-insensitively; keep it exact
		}
		out = append(out, name)
	}
	return out
}

// jsonField finds the type of the struct field encoding/json decodes key into (exact name).
func jsonField(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if typ, ok := jsonField(ft, key); ok {
					return typ, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

// suggestField proposes the closest JSON field name of a struct type.
func suggestField(t reflect.Type, k string) string {
	best, bestD := "", len(k)/3+1
	for _, name := range jsonFields(t) {
		if d := editDistance(strings.ToLower(k), name); d < bestD {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// decodeJSONStrict decodes data (already checked by checkJSONValue) into dst; its errors
// are a backstop for what the check does not model.
func decodeJSONStrict(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonFieldError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &FieldError{Field: "value", Err: fmt.Errorf("%w: trailing data", ErrInvalid)}
	}
	return nil
}

// jsonFieldError turns encoding/json's messages into FieldErrors with our sentinels.
func jsonFieldError(err error) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return &FieldError{Field: joinPath("value", ute.Field), Err: fmt.Errorf("%w: %s where %s is expected", ErrInvalid, ute.Value, ute.Type)}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &FieldError{Field: "value", Err: fmt.Errorf("%w %s", ErrUnknownField, name)}
	}
	return &FieldError{Field: "value", Err: fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(msg, "json: "))}
}
