package convert

import "testing"

// general.name and general.size_label as gguf-py derives them.
func TestModelNameAndSizeLabel(t *testing.T) {
	for _, c := range []struct {
		cfg, folder, want string
	}{
		{`{}`, "../fixtures/stories260K-hf", "stories260K Hf"},
		{`{}`, "/models/Llama-3.2-1B-Instruct/", "Llama 3.2 1B Instruct"},
		{`{}`, "tinyllama-1.1b-chat-v1.0", "Tinyllama 1.1b Chat v1.0"},
		{`{"_name_or_path": "meta-llama/Llama-2-7b-hf"}`, "x", "Llama 2 7b Hf"},
		{`{"_name_or_path": "/home/u/a/b"}`, "smol-lm", "Smol Lm"},
		{`{"_name_or_path": "my model"}`, "x", "My Model"},
		{`{}`, "qwen2.5-0.5b", "Qwen2.5 0.5b"},
	} {
		cfg, err := parseConfig([]byte(c.cfg))
		if err != nil {
			t.Fatal(err)
		}
		if got := modelName(cfg, c.folder); got != c.want {
			t.Errorf("modelName(%s, %q) = %q, want %q", c.cfg, c.folder, got, c.want)
		}
	}
	for _, c := range []struct {
		n    int64
		want string
	}{
		{292800, "293K"}, {500, "0.50K"}, {15_000_000, "15M"}, {124_439_808, "124M"},
		{1_235_814_400, "1.2B"}, {6_738_415_616, "6.7B"}, {70_553_706_496, "71B"}, {1_000_000, "1000K"},
	} {
		if got := sizeLabel(c.n); got != c.want {
			t.Errorf("sizeLabel(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
