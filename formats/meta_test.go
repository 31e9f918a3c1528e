package formats

import (
	"errors"
	"math"
	"testing"
)

func TestMetaOrderAndGetters(t *testing.T) {
	m := NewMeta()
	m.Set("general.architecture", ValString("llama"))
	m.Set("llama.block_count", ValUint32(5))
	m.Set("llama.rope.freq_base", ValFloat32(10000))
	m.Set("neg", ValInt32(-3))
	m.Set("tokens", ValArray([]string{"a", "b"}))
	m.Set("flag", ValBool(true))
	m.Set("llama.block_count", ValUint32(6)) // replace keeps position
	keys := []string{"general.architecture", "llama.block_count", "llama.rope.freq_base", "neg", "tokens", "flag"}
	for i, kv := range m.KVs() {
		if kv.Key != keys[i] {
			t.Fatalf("order: %d is %q, want %q", i, kv.Key, keys[i])
		}
	}
	if s, ok := m.String("general.architecture"); !ok || s != "llama" {
		t.Error("String")
	}
	if v, ok := m.Uint("llama.block_count"); !ok || v != 6 {
		t.Error("Uint", v)
	}
	if _, ok := m.Uint("neg"); ok {
		t.Error("Uint of a negative must fail")
	}
	if v, ok := m.Int("neg"); !ok || v != -3 {
		t.Error("Int")
	}
	if f, ok := m.Float("llama.rope.freq_base"); !ok || f != 10000 {
		t.Error("Float")
	}
	if s, ok := m.Strings("tokens"); !ok || len(s) != 2 {
		t.Error("Strings")
	}
	if b, ok := m.Bool("flag"); !ok || !b {
		t.Error("Bool")
	}
	m.Delete("neg")
	if m.Has("neg") || m.Len() != 5 || m.KVs()[3].Key != "tokens" {
		t.Error("Delete")
	}
	if v, _ := m.Get("tokens"); v.Len() != 2 || v.Elem != TypeString {
		t.Error("array value")
	}
	if _, ok := ValUint64(math.MaxUint64).AsInt(); ok {
		t.Error("AsInt of MaxUint64 must fail")
	}
}

func TestErrorsWrapRulesAndClasses(t *testing.T) {
	rule := NewRule("header too large", ErrLimit)
	err := error(&FormatError{File: "m.safetensors", Offset: 0, Detail: "N = 1e12", Err: rule})
	if !errors.Is(err, rule) || !errors.Is(err, ErrLimit) || errors.Is(err, ErrFormat) {
		t.Fatalf("errors.Is chain broken: %v", err)
	}
	var fe *FormatError
	if !errors.As(err, &fe) || fe.File != "m.safetensors" {
		t.Fatal("errors.As")
	}
	if got := err.Error(); got != "m.safetensors: offset 0: header too large: N = 1e12" {
		t.Errorf("message %q", got)
	}
	if !IsInputError(err) {
		t.Error("IsInputError")
	}
}
