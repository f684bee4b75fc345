package discovery

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every configuration error wraps one of them inside a *FieldError.
var (
	// ErrUnknownField: a field that does not exist in the Envoy API (usually a typo).
	ErrUnknownField = errors.New("unknown field")
	// ErrUnsupported: valid Envoy configuration that Strait does not implement yet.
	ErrUnsupported = errors.New("not supported by Strait")
	// ErrInvalid: a value out of range or of the wrong form.
	ErrInvalid = errors.New("invalid value")
	// ErrUnknownFilter: a filter type URL no decoder is registered for.
	ErrUnknownFilter = errors.New("unknown filter type")
	// ErrDanglingCluster: a filter names a cluster the snapshot does not define.
	ErrDanglingCluster = errors.New("undefined cluster")
	// ErrDuplicate: two resources with one name, or two listeners on one address.
	ErrDuplicate = errors.New("duplicate")
	// ErrRegistry: a bad or duplicate registration.
	ErrRegistry = errors.New("discovery: registry")
	// ErrRead: the bootstrap file could not be read or is not YAML/JSON.
	ErrRead = errors.New("discovery: cannot read bootstrap")
)

// FieldError locates one configuration error: the file (empty for xDS resources), the
// resource (`static_resources.listeners[0] ("listener_0")`, or `listener "x"` from a
// translator), the path of the field within the resource (dotted, with [i] for list
// elements; empty for the resource itself) and the error.
type FieldError struct {
	File     string
	Resource string
	Field    string
	Err      error
}

// Error formats `file: resource: field: error`, leaving out empty parts.
func (e *FieldError) Error() string {
	var b strings.Builder
	for _, p := range []string{e.File, e.Resource, e.Field} {
		if p != "" {
			b.WriteString(p)
			b.WriteString(": ")
		}
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// errs collects FieldErrors for one resource.
type errs struct {
	list []error
}

// add records err at field (relative to the resource). If err already holds FieldErrors
// (from a nested decoder), their fields are prefixed with field.
func (l *errs) add(field string, err error) {
	if err == nil {
		return
	}
	l.list = append(l.list, prefixed(field, err)...)
}

func (l *errs) err() error { return errors.Join(l.list...) }

// flatten splits a joined error into its parts.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// prefixed returns err's parts as FieldErrors whose Field starts with prefix.
func prefixed(prefix string, err error) []error {
	parts := flatten(err)
	out := make([]error, 0, len(parts))
	for _, e := range parts {
		if fe, ok := e.(*FieldError); ok {
			c := *fe
			c.Field = joinPath(prefix, fe.Field)
			out = append(out, &c)
			continue
		}
		out = append(out, &FieldError{Field: prefix, Err: e})
	}
	return out
}

// located returns err's parts as FieldErrors placed in file and resource (replacing the
// translator's own resource label).
func located(file, resource string, err error) []error {
	parts := flatten(err)
	out := make([]error, 0, len(parts))
	for _, e := range parts {
		if fe, ok := e.(*FieldError); ok {
			c := *fe
			c.File, c.Resource = file, resource
			out = append(out, &c)
			continue
		}
		out = append(out, &FieldError{File: file, Resource: resource, Err: e})
	}
	return out
}

func joinPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case strings.HasPrefix(b, "["):
		return a + b
	}
	return a + "." + b
}

// missingError marks a "required but absent" error. When the bootstrap parser removed an
// unsupported field from the same resource (so that decoding could go on and report more),
// such an error is most likely a consequence of that removal (`rds` instead of
// `route_config`, `redirect` instead of `route`), so the parser drops it and keeps the
// unsupported field's own error. Resources that arrive over xDS keep every field, and their
// translators do not report a missing field when an unsupported alternative is set.
type missingError struct{ err error }

func (e *missingError) Error() string { return e.err.Error() }
func (e *missingError) Unwrap() error { return e.err }

// missing returns an ErrInvalid error marked as a missing-field error.
func missing(format string, a ...any) error {
	return &missingError{fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)}
}

// withoutMissing drops the missing-field errors from err's parts.
func withoutMissing(err error) []error {
	var out []error
	for _, e := range flatten(err) {
		var m *missingError
		if !errors.As(e, &m) {
			out = append(out, e)
		}
	}
	return out
}
