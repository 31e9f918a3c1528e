package safetensors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

func ExampleOpen() {
	r, err := safetensors.Open("testdata/unpadded_unsorted.safetensors")
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	fmt.Println("header bytes:", r.HeaderLen())
	for _, t := range r.Tensors() {
		fmt.Println(t.Name, t.DType, t.Shape, "at", t.Offset)
	}
	// Output:
	// header bytes: 175
	// b.u8 U8 [3] at 183
	// a.f32 F32 [2 2] at 186
	// c.f16 F16 [3] at 202
}

func ExampleWrite() {
	ts := []formats.Tensor{
		{TensorInfo: formats.TensorInfo{Name: "bias", DType: formats.U8, Shape: []int64{2}, Size: 2}, Data: formats.BytesWriter{1, 2}},
		{TensorInfo: formats.TensorInfo{Name: "weight", DType: formats.F16, Shape: []int64{1}, Size: 2}, Data: formats.BytesWriter{0, 0x3c}},
	}
	var buf bytes.Buffer
	if err := safetensors.Write(context.Background(), &buf, map[string]string{"format": "pt"}, ts); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", buf.Bytes()[8:])
	// Output:
	// "{\"__metadata__\":{\"format\":\"pt\"},\"weight\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},\"bias\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}       \x00<\x01\x02"
}

func ExampleOpenFolder() {
	f, err := safetensors.OpenFolder("testdata/stories260K-sharded")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fmt.Println(f.Shards())
	fmt.Println(len(f.Tensors()), "tensors; first in", f.Tensors()[0].File)
	fmt.Println(f.Companions())
	// Output:
	// [model-00001-of-00002.safetensors model-00002-of-00002.safetensors]
	// 48 tensors; first in model-00001-of-00002.safetensors
	// [config.json generation_config.json special_tokens_map.json tokenizer.model tokenizer_config.json]
}

func ExampleNewReader_errors() {
	// A header claiming 1 TB in a 16-byte file is refused before any read.
	b := []byte{0, 0, 0, 0, 0, 1, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '}
	_, err := safetensors.NewReader(bytes.NewReader(b), int64(len(b)), "huge.safetensors", safetensors.Options{})
	fmt.Println(errors.Is(err, safetensors.ErrHeaderTooLarge), errors.Is(err, formats.ErrLimit))
	fmt.Println(err)
	// Output:
	// true true
	// huge.safetensors: offset 0: header length above the limit: N = 1099511627776, limit 100000000
}
