package vocab

import (
	"encoding/json"
	"strings"
)

// specialState mirrors gguf-py's SpecialVocab while it loads: special ids
// and add flags in the order they were first set (the order the GGUF
// writer then emits them), and tokenizer_config.json token texts that the
// post-processor logic overrides.
type specialState struct {
	f        *hfFolder
	nVocab   int // ids at or above it are ignored; -1: no bound
	types    []string
	ids      map[string]int64
	idOrder  []string
	add      map[string]bool
	addOrder []string
	tcTokens map[string]string // overrides of tokenizer_config's "<typ>_token"
}

func (s *specialState) setID(typ string, id int64) {
	if id < 0 || (s.nVocab >= 0 && id >= int64(s.nVocab)) {
		return
	}
	if _, done := s.ids[typ]; done {
		return
	}
	s.ids[typ] = id
	s.idOrder = append(s.idOrder, typ)
}

func (s *specialState) setAdd(typ string, b bool) {
	if _, ok := s.add[typ]; !ok {
		s.addOrder = append(s.addOrder, typ)
	}
	s.add[typ] = b
}

// token is tokenizer_config.json's "<typ>_token" text (falling back to
// special_tokens_map.json), after overrides.
func (s *specialState) token(typ string) (string, bool) {
	if t, ok := s.tcTokens[typ]; ok {
		return t, t != ""
	}
	t, ok := s.f.configToken(typ + "_token")
	return t, ok && t != ""
}

func (s *specialState) hasType(typ string) bool {
	for _, t := range s.types {
		if t == typ {
			return true
		}
	}
	return false
}

// specialVocab applies SpecialVocab's loading (tokenizer.json,
// tokenizer_config.json, then config.json) to v. nVocab bounds the ids as
// the converter's n_vocab does (-1 for none).
func (f *hfFolder) specialVocab(v *Vocab, nVocab int) error {
	s := &specialState{
		f: f, nVocab: nVocab,
		types:    []string{"bos", "eos", "unk", "sep", "pad", "cls", "mask"},
		ids:      map[string]int64{},
		add:      map[string]bool{},
		tcTokens: map[string]string{},
	}
	hasTC := len(f.tokConfig) > 0
	var added []addedToken
	if f.tokJSON != nil {
		added = f.tokJSON.AddedTokens
		s.postProcessor(hasTC)
	}
	if hasTC {
		if err := f.chatTemplate(v); err != nil {
			return err
		}
		for _, typ := range s.types {
			if b, ok := f.tokConfig.optBool("add_" + typ + "_token"); ok {
				s.setAdd(typ, b)
			}
			content, ok := s.token(typ)
			if !ok {
				continue
			}
			for _, at := range added {
				if at.Content == content {
					s.setID(typ, at.ID)
					break
				}
			}
		}
	}
	if f.config != nil {
		tc, _ := f.config.object(f.path(fileModelConfig), "text_config")
		for _, typ := range s.types {
			key := typ + "_token_id"
			src := f.config
			if !src.has(key) && tc.has(key) {
				src = tc
			}
			if id, ok := src.optInt(key); ok {
				s.setID(typ, id)
				continue
			}
			// A list (Llama 3.1's eos_token_id): its first id.
			var list []int64
			if src.has(key) && json.Unmarshal(src[key], &list) == nil && len(list) > 0 {
				s.setID(typ, list[0])
			}
		}
	}
	for _, typ := range s.idOrder {
		if p := v.idPtr(typ); p != nil {
			*p = s.ids[typ]
			v.idOrder = append(v.idOrder, typ)
		}
	}
	for _, typ := range s.addOrder {
		if p := v.addPtr(typ); p != nil {
			*p = boolPtr(s.add[typ])
			v.addOrder = append(v.addOrder, typ)
		}
	}
	return nil
}

// chatTemplate sets v.ChatTemplate from tokenizer_config.json's
// chat_template, else chat_template.jinja, else chat_template.json. A list
// of named templates contributes the one named "default" (the others would
// be tokenizer.chat_template.<name> keys, which Vocab does not carry).
func (f *hfFolder) chatTemplate(v *Vocab) error {
	raw, ok := f.tokConfig["chat_template"]
	if !ok {
		jinja, err := readFile(f.dir, fileChatJinja)
		if err != nil {
			return err
		}
		if jinja != nil {
			v.ChatTemplate = string(jinja)
			return nil
		}
		ct, err := readObject(f.dir, fileChatTemplate)
		if err != nil {
			return err
		}
		if raw, ok = ct["chat_template"]; !ok {
			return nil
		}
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		v.ChatTemplate = str
		return nil
	}
	var list []struct {
		Name     string  `json:"name"`
		Template *string `json:"template"`
	}
	if json.Unmarshal(raw, &list) == nil {
		for _, t := range list {
			if sanitizeTemplateName(t.Name) == "default" && t.Template != nil {
				v.ChatTemplate = *t.Template
			}
		}
	}
	return nil // null or another type: ignored, as the converter does
}

// sanitizeTemplateName replaces every character outside [A-Za-z0-9] by '_'.
func sanitizeTemplateName(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// ppItem is one element of a TemplateProcessing template.
type ppItem struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

func (it ppItem) special() string {
	if it.SpecialToken == nil {
		return ""
	}
	return it.SpecialToken.ID
}

func (it ppItem) sequence() string {
	if it.Sequence == nil {
		return ""
	}
	return it.Sequence.ID
}

type postProc struct {
	Type       string            `json:"type"`
	Processors []json.RawMessage `json:"processors"`
	Single     []ppItem          `json:"single"`
	Pair       []ppItem          `json:"pair"`
	Cls        []json.RawMessage `json:"cls"`
	Sep        []json.RawMessage `json:"sep"`
}

// postProcessor derives add_bos/add_eos/add_sep from tokenizer.json's
// post_processor the way SpecialVocab does: RobertaProcessing adds all
// three; a TemplateProcessing "single" template that starts with the BOS
// (or CLS) token sets add_bos, one that ends with a special token sets
// add_eos, moving the configured EOS to EOT when the two differ; the "pair"
// template decides add_sep.
func (s *specialState) postProcessor(hasTC bool) {
	raw := s.f.tokJSON.PostProcessor
	var top postProc
	if len(raw) == 0 || json.Unmarshal(raw, &top) != nil || top.Type == "" && top.Processors == nil {
		return
	}
	bos, _ := s.token("bos")
	cls, _ := s.token("cls")
	eos, _ := s.token("eos")
	sep, _ := s.token("sep")
	if bos == "" && cls != "" && hasTC {
		s.tcTokens["bos"], bos = cls, cls
	}
	if eos == "" && sep != "" && hasTC {
		s.tcTokens["eos"], eos = sep, sep
	}
	procs := []postProc{top}
	if top.Processors != nil {
		procs = procs[:0]
		for _, r := range top.Processors {
			var p postProc
			if json.Unmarshal(r, &p) == nil {
				procs = append(procs, p)
			}
		}
	}
	for _, p := range procs {
		switch p.Type {
		case "RobertaProcessing":
			s.setAdd("bos", true)
			s.setAdd("eos", true)
			s.setAdd("sep", true)
			if cls == "" && hasTC {
				cls = bos
				if len(p.Cls) > 0 {
					var c string
					if json.Unmarshal(p.Cls[0], &c) == nil {
						cls = c
					}
				}
				s.tcTokens["cls"] = cls
			}
			if sep == "" && hasTC {
				sep = eos
				if len(p.Sep) > 0 {
					var c string
					if json.Unmarshal(p.Sep[0], &c) == nil {
						sep = c
					}
				}
				s.tcTokens["sep"] = sep
			}
		case "TemplateProcessing":
			s.template(p, hasTC, &bos, &cls, &eos, &sep)
		}
	}
}

func (s *specialState) template(p postProc, hasTC bool, bos, cls, eos, sep *string) {
	var first, last string
	if len(p.Single) > 1 {
		if first = p.Single[0].special(); first != "" {
			if !hasTC {
				*bos = first
			}
			s.setAdd("bos", first == *bos || first == *cls)
		}
		if last = p.Single[len(p.Single)-1].special(); last != "" {
			if !hasTC {
				*eos = last
			} else if last != *eos {
				if !s.hasType("eot") {
					s.types = append(s.types, "eot")
					s.tcTokens["eot"] = *eos
				}
				s.tcTokens["eos"], *eos = last, last
			}
			s.setAdd("eos", last == *eos)
		}
	}
	pair := p.Pair
	if len(pair) == 0 {
		return
	}
	start, stop := 0, len(pair)
	if first != "" && pair[0].special() == first {
		start = 1
	}
	if last != "" && pair[len(pair)-1].special() == last {
		stop = len(pair) - 1
	}
	if start >= stop {
		return
	}
	pair = pair[start:stop]
	if pair[0].sequence() != "A" || pair[len(pair)-1].sequence() != "B" || len(pair) < 3 {
		return
	}
	mid := pair[1 : len(pair)-1]
	addSep := false
	if e := mid[0].special(); e != "" && (e == *sep || e == *eos) && last == "" {
		addSep = true
	}
	if len(mid) == 2 {
		if e := mid[1].special(); e != "" && (e == *sep || e == *eos) {
			addSep = true
		}
	}
	s.setAdd("sep", addSep)
	if addSep && *sep == "" && hasTC {
		s.tcTokens["sep"], *sep = *eos, *eos
	}
}
