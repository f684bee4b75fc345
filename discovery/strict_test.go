package discovery

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestAllowlistNamesExist: every field the allowlist names exists in its message (a typo
// there would silently reject a supported field), and the L7 messages are covered.
func TestAllowlistNamesExist(t *testing.T) {
	var covered []string
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		var walk func(msgs protoreflect.MessageDescriptors)
		walk = func(msgs protoreflect.MessageDescriptors) {
			for i := range msgs.Len() {
				md := msgs.Get(i)
				if allowed, ok := supportedFields(md.FullName()); ok {
					covered = append(covered, string(md.FullName()))
					for _, name := range allowed {
						if md.Fields().ByName(protoreflect.Name(name)) == nil {
							t.Errorf("%s has no field %q", md.FullName(), name)
						}
					}
				}
				walk(md.Messages())
			}
		}
		walk(fd.Messages())
		return true
	})
	for _, want := range []string{
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
		"envoy.config.route.v3.RouteConfiguration", "envoy.config.route.v3.RouteAction",
		"envoy.config.route.v3.RetryPolicy", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
		"envoy.extensions.filters.http.router.v3.Router", "envoy.config.core.v3.HeaderValueOption",
	} {
		if !slices.Contains(covered, want) {
			t.Errorf("%s has no allowlist (or is not linked)", want)
		}
	}
}

type nestedEmbedded struct {
	Flag bool `json:"flag"`
}

type nestedJSON struct {
	nestedEmbedded
	Name   string            `json:"name"`
	Count  uint8             `json:"count"`
	Ratio  float64           `json:"ratio"`
	On     bool              `json:"on"`
	Inner  *nestedInner      `json:"inner"`
	List   []nestedInner     `json:"list"`
	Labels map[string]string `json:"labels"`
	Dur    *jsonDuration     `json:"dur"`
	Any    any               `json:"any"`
	Bytes  []byte            `json:"bytes"`
}

type nestedInner struct {
	Service string   `json:"service"`
	Tags    []string `json:"tags"`
}

// TestDecodeStructStrict: unknown fields and wrong types are reported at every depth with
// their paths, every one of them, and the rest still decodes.
func TestDecodeStructStrict(t *testing.T) {
	s, err := structpb.NewStruct(map[string]any{
		"name":   "n",
		"count":  300,
		"ratio":  0.5,
		"on":     "yes",
		"inner":  map[string]any{"servce": "a", "tags": []any{"x", 1}},
		"list":   []any{map[string]any{"service": "b"}, "oops", map[string]any{"service": 2}},
		"labels": map[string]any{"a": "1", "b": true},
		"dur":    "1m30s",
		"any":    []any{1, "two"},
		"bytes":  "aGk=",
		"flag":   true,
		"extra":  1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var dst nestedJSON
	err = decodeStruct(s, &dst)
	want := []string{
		`value: unknown field "extra"`,
		`value.count: invalid value: number 300 where uint8 is expected`,
		`value.on: invalid value: string where bool is expected`,
		`value.inner: unknown field "servce" (did you mean "service"?)`,
		`value.inner.tags[1]: invalid value: number where string is expected`,
		`value.list[1]: invalid value: string where an object is expected`,
		`value.list[2].service: invalid value: number where string is expected`,
		`value.labels["b"]: invalid value: bool where string is expected`,
	}
	if got := len(flatten(err)); got != len(want) {
		t.Errorf("%d errors, want %d: %v", got, len(want), err)
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
	if !errors.Is(err, ErrUnknownField) || !errors.Is(err, ErrInvalid) || onlyUnknownFields(err) {
		t.Errorf("sentinels: %v", err)
	}
	if dst.Name != "n" || dst.Ratio != 0.5 || dst.Dur == nil || dst.Dur.d.Seconds() != 90 || len(dst.List) != 3 || dst.List[0].Service != "b" ||
		dst.Labels["a"] != "1" || string(dst.Bytes) != "hi" || !dst.Flag || dst.Inner == nil || dst.Inner.Tags[0] != "x" {
		t.Errorf("the valid fields must still decode: %+v", dst)
	}

	// Durations with their own error, and only unknown fields.
	s, _ = structpb.NewStruct(map[string]any{"dur": "-1s", "inner": map[string]any{"x": 1}})
	err = decodeStruct(s, &dst)
	if err == nil || !strings.Contains(err.Error(), `value.dur: invalid value: "-1s" is negative`) || !strings.Contains(err.Error(), `value.inner: unknown field "x"`) {
		t.Errorf("duration: %v", err)
	}
	s, _ = structpb.NewStruct(map[string]any{"nme": "a"})
	if err := decodeStruct(s, &dst); !onlyUnknownFields(err) || !strings.Contains(err.Error(), `did you mean "name"?`) {
		t.Errorf("unknown only: %v", err)
	}
}
