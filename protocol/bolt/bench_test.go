package bolt

import (
	"testing"
)

// benchRequest is a typical SOFARPC request: SofaRequest class, five header pairs, 1 KiB of
// Hessian content.
func benchRequest(b *testing.B) []byte {
	b.Helper()
	var hb []byte
	hb = AppendHeader(hb, "sofa_head_target_service", "com.alipay.test.EchoService:1.0")
	hb = AppendHeader(hb, "sofa_head_method_name", "echo")
	hb = AppendHeader(hb, "sofa_head_target_app", "echo-server")
	hb = AppendHeader(hb, "rpc_trace_context.sofaTraceId", "0a0fe8b81690000000001000112345")
	hb = AppendHeader(hb, "rpc_trace_context.sofaRpcId", "0.1")
	h, err := ParseHeader(hb)
	if err != nil {
		b.Fatal(err)
	}
	f := Frame{Type: TypeRequest, CmdCode: CmdRequest, Version: 1, RequestID: 1, Codec: CodecHessian2, Timeout: 3000,
		Class: []byte("com.alipay.sofa.rpc.core.request.SofaRequest"), Header: h, Content: make([]byte, 1024)}
	out, err := AppendFrame(nil, &f)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func BenchmarkDecode(b *testing.B) {
	buf := benchRequest(b)
	var f Frame
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf, &f, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHead(b *testing.B) {
	buf := benchRequest(b)
	var f Frame
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeHead(buf, &f, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeNeedMore(b *testing.B) {
	buf := benchRequest(b)[:500]
	var f Frame
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf, &f, Limits{}); err != ErrNeedMore {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeaderGet(b *testing.B) {
	buf := benchRequest(b)
	var f Frame
	if _, err := Decode(buf, &f, Limits{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := f.Header.Get("sofa_head_target_service"); !ok {
			b.Fatal("missing")
		}
	}
}

func BenchmarkAppendHead(b *testing.B) {
	buf := benchRequest(b)
	var f Frame
	if _, err := Decode(buf, &f, Limits{}); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AppendHead(dst[:0], &f, len(f.Content)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	buf := benchRequest(b)
	var f Frame
	if _, err := Decode(buf, &f, Limits{}); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := AppendFrame(dst[:0], &f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendStatusResponse(b *testing.B) {
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendStatusResponse(dst[:0], 42, CodecHessian2, StatusServerThreadpoolBusy)
	}
}

func BenchmarkSetRequestID(b *testing.B) {
	buf := benchRequest(b)
	b.ReportAllocs()
	id := uint32(0)
	for b.Loop() {
		id++
		if err := SetRequestID(buf, id); err != nil {
			b.Fatal(err)
		}
	}
}
