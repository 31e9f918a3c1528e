package detect

import (
	"encoding/json"

	"github.com/qtool-dev/qtool/formats"
	"github.com/qtool-dev/qtool/formats/gguf"
	"github.com/qtool-dev/qtool/formats/safetensors"
)

// Details returns the container facts of an opened source that are not
// tensors or metadata: GGUF version, alignment and data start; safetensors
// header length; a folder's shards, companion files and config.json.
func Details(src formats.Source) map[string]any {
	switch s := src.(type) {
	case *gguf.Reader:
		return map[string]any{
			"version":         s.Version(),
			"alignment":       s.Alignment(),
			"data_start":      s.DataStart(),
			"tensor_info_end": s.TensorInfoEnd(),
		}
	case *safetensors.Reader:
		return map[string]any{
			"header_length": s.HeaderLen(),
			"data_start":    s.DataStart(),
		}
	case *safetensors.Folder:
		d := map[string]any{
			"shards":     s.Shards(),
			"companions": s.Companions(),
		}
		if raw := s.Config(); raw != nil {
			var cfg any
			if json.Unmarshal(raw, &cfg) == nil {
				d["config"] = cfg
			}
		}
		return d
	}
	return nil
}
