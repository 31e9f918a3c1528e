package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// ErrCheckpoint is wrapped by the errors of a checkpoint that cannot be
// resumed: corrupted, or written for another model, config or dataset.
var ErrCheckpoint = errors.New("train: checkpoint refused")

const (
	ckptVersion = 1
	ckptState   = "state.json"
	ckptTensors = "tensors.bin"
	ckptSum     = "state.json.sha256"
	// fingerprintBytes is how much of each model file the fingerprint
	// hashes (the GGUF header and tensor table, or a safetensors header,
	// lie within it for the models qtool trains).
	fingerprintBytes = 4 << 20
)

// Fingerprint identifies a base model: its size and a SHA-256 over the
// first bytes (header and tensor table) of each of its files.
type Fingerprint struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ModelFingerprint fingerprints a GGUF file or a model folder (its
// regular files, by name).
func ModelFingerprint(path string) (Fingerprint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Fingerprint{}, err
	}
	files := []string{path}
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return Fingerprint{}, err
		}
		files = files[:0]
		for _, e := range ents {
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	h := sha256.New()
	var fp Fingerprint
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return Fingerprint{}, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return Fingerprint{}, err
		}
		fp.Size += fi.Size()
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(name), fi.Size())
		_, err = io.Copy(h, io.LimitReader(f, fingerprintBytes))
		f.Close()
		if err != nil {
			return Fingerprint{}, err
		}
	}
	fp.SHA256 = hex.EncodeToString(h.Sum(nil))
	return fp, nil
}

// WindowsFingerprint is a SHA-256 over the training windows' tokens and
// masks: resuming on other data is refused.
func WindowsFingerprint(ws []Window) string {
	h := sha256.New()
	var b [4]byte
	for _, w := range ws {
		binary.LittleEndian.PutUint32(b[:], uint32(len(w.Inputs)))
		h.Write(b[:])
		for i := range w.Inputs {
			binary.LittleEndian.PutUint32(b[:], uint32(w.Inputs[i]))
			h.Write(b[:])
			binary.LittleEndian.PutUint32(b[:], uint32(w.Targets[i]))
			h.Write(b[:])
			if w.Mask[i] {
				h.Write([]byte{1})
			} else {
				h.Write([]byte{0})
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// PairShape describes one adapted module in a checkpoint.
type PairShape struct {
	Layer  int `json:"layer"`
	Module int `json:"module"`
	In     int `json:"in"`
	Out    int `json:"out"`
	Rank   int `json:"rank"`
}

// Checkpoint is the saved state of a run between two optimizer steps.
type Checkpoint struct {
	Version int    `json:"version"`
	Step    int    `json:"step"`
	Epoch   int    `json:"epoch"`
	Next    int    `json:"next"`
	Order   []int  `json:"order"`
	RNG     []byte `json:"rng"`
	// Config is the resolved configuration.
	Config Config      `json:"config"`
	Model  Fingerprint `json:"model"`
	// Data is WindowsFingerprint of the training windows.
	Data  string      `json:"data"`
	Pairs []PairShape `json:"pairs"`
	// TensorsSHA256 is the hash of tensors.bin: A, B, m(A), v(A), m(B),
	// v(B) of each pair in order, little-endian float32.
	TensorsSHA256 string `json:"tensors_sha256"`
	// Extra is the caller's own record (the CLI's flags).
	Extra json.RawMessage `json:"extra,omitempty"`

	tensors []byte
}

// Step is the number of optimizer steps taken.
func (t *Trainer) Step() int { return t.step }

// SaveCheckpoint writes the trainer's state into the folder dir, replacing
// it atomically.
func (t *Trainer) SaveCheckpoint(dir string, model Fingerprint, data string, extra json.RawMessage) error {
	rng, err := t.src.MarshalBinary()
	if err != nil {
		return err
	}
	ck := Checkpoint{Version: ckptVersion, Step: t.step, Epoch: t.epoch, Next: t.next, Order: t.order, RNG: rng,
		Config: t.Cfg, Model: model, Data: data, Extra: extra}
	var buf bytes.Buffer
	for i, p := range t.pairs {
		l := t.lins[i]
		ck.Pairs = append(ck.Pairs, PairShape{Layer: l.Layer, Module: l.Module, In: l.In, Out: l.Out, Rank: p.Rank})
		for _, v := range [][]float32{p.A, p.B, p.mA, p.vA, p.mB, p.vB} {
			putFloats(&buf, v)
		}
	}
	sum := sha256.Sum256(buf.Bytes())
	ck.TensorsSHA256 = hex.EncodeToString(sum[:])
	js, err := json.MarshalIndent(&ck, "", " ")
	if err != nil {
		return err
	}
	jsum := sha256.Sum256(js)
	return commitDir(dir, []namedBytes{{ckptTensors, buf.Bytes()}, {ckptState, js}, {ckptSum, []byte(hex.EncodeToString(jsum[:]) + "\n")}})
}

type namedBytes struct {
	name string
	b    []byte
}

// prevPath is where commitDir keeps the previous checkpoint of dir while
// it moves a new one into place.
func prevPath(dir string) string {
	dir = filepath.Clean(dir)
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".prev")
}

// commitDir replaces the folder dir by one holding files, so that a
// process killed at any moment leaves a complete checkpoint behind: the
// files are written and synced in a temporary folder beside dir; the old
// dir is renamed to prevPath(dir), the new one to dir, and only then is the
// old one removed. Killed between the two renames, the previous checkpoint
// is found at prevPath(dir) (LoadCheckpoint reads it, the next save puts it
// back); temporaries of killed saves are removed by the next save.
func commitDir(dir string, files []namedBytes) error {
	dir = filepath.Clean(dir)
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	prev := prevPath(dir)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Lstat(prev); err == nil {
			if err := os.Rename(prev, dir); err != nil {
				return fmt.Errorf("checkpoint %s: restore the previous one: %w", dir, err)
			}
		}
	}
	tmpPrefix := "." + base + ".saving-"
	if es, err := os.ReadDir(parent); err == nil {
		for _, e := range es {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				os.RemoveAll(filepath.Join(parent, e.Name()))
			}
		}
	}
	tmp, err := os.MkdirTemp(parent, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	for _, f := range files {
		if err := writeSynced(filepath.Join(tmp, f.name), f.b); err != nil {
			return fmt.Errorf("checkpoint %s: %w", dir, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	syncDir(tmp)
	hadOld := false
	if _, err := os.Lstat(dir); err == nil {
		if err := os.RemoveAll(prev); err != nil {
			return fmt.Errorf("checkpoint %s: remove %s: %w", dir, prev, err)
		}
		if err := os.Rename(dir, prev); err != nil {
			return fmt.Errorf("checkpoint %s: move the previous one aside: %w", dir, err)
		}
		hadOld = true
	}
	if err := os.Rename(tmp, dir); err != nil {
		if hadOld {
			os.Rename(prev, dir)
		}
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	committed = true
	syncDir(parent)
	if hadOld {
		os.RemoveAll(prev)
	}
	return nil
}

// writeSynced writes b to the new file name and syncs it.
func writeSynced(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a folder's entries durable, where the platform allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func putFloats(w *bytes.Buffer, v []float32) {
	var b [4]byte
	for _, x := range v {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
		w.Write(b[:])
	}
}

func corrupt(dir, format string, args ...any) error {
	return fmt.Errorf("checkpoint %s is corrupted: %s: %w", dir, fmt.Sprintf(format, args...), ErrCheckpoint)
}

// LoadCheckpoint reads and verifies a checkpoint folder. When dir does not
// exist but the previous checkpoint a save left aside does (the save was
// killed between its renames), that one is read.
func LoadCheckpoint(dir string) (*Checkpoint, error) {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(prevPath(dir), ckptState)); err == nil {
			dir = prevPath(dir)
		}
	}
	js, err := os.ReadFile(filepath.Join(dir, ckptState))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a checkpoint (no %s): %w", dir, ckptState, ErrCheckpoint)
		}
		return nil, err
	}
	want, err := os.ReadFile(filepath.Join(dir, ckptSum))
	if err != nil {
		return nil, corrupt(dir, "%v", err)
	}
	got := sha256.Sum256(js)
	if string(bytes.TrimSpace(want)) != hex.EncodeToString(got[:]) {
		return nil, corrupt(dir, "%s does not match its checksum", ckptState)
	}
	ck := &Checkpoint{}
	if err := json.Unmarshal(js, ck); err != nil {
		return nil, corrupt(dir, "%s: %v", ckptState, err)
	}
	if ck.Version != ckptVersion {
		return nil, fmt.Errorf("checkpoint %s has version %d (want %d): %w", dir, ck.Version, ckptVersion, ErrCheckpoint)
	}
	if ck.tensors, err = os.ReadFile(filepath.Join(dir, ckptTensors)); err != nil {
		return nil, corrupt(dir, "%v", err)
	}
	ts := sha256.Sum256(ck.tensors)
	if hex.EncodeToString(ts[:]) != ck.TensorsSHA256 {
		return nil, corrupt(dir, "%s does not match its checksum", ckptTensors)
	}
	n := 0
	for _, p := range ck.Pairs {
		n += 3 * 4 * p.Rank * (p.In + p.Out)
	}
	if n != len(ck.tensors) || ck.Next < 0 || ck.Next > len(ck.Order) || ck.Step < 0 {
		return nil, corrupt(dir, "inconsistent sizes")
	}
	return ck, nil
}

// SameConfig reports whether two resolved configurations train the same
// way (SaveEvery and the callbacks aside); when not, it names a field.
func SameConfig(a, b Config) (string, bool) {
	a.SaveEvery, b.SaveEvery = 0, 0
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if bytes.Equal(ja, jb) {
		return "", true
	}
	var ma, mb map[string]json.RawMessage
	json.Unmarshal(ja, &ma)
	json.Unmarshal(jb, &mb)
	keys := make([]string, 0, len(ma))
	for k := range ma {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !bytes.Equal(ma[k], mb[k]) {
			return fmt.Sprintf("%s %s (checkpoint: %s)", k, ma[k], mb[k]), false
		}
	}
	return "config", false
}

// Restore loads a checkpoint's state into a trainer opened with the same
// model and configuration.
func (t *Trainer) Restore(ck *Checkpoint) error {
	if what, ok := SameConfig(t.Cfg, ck.Config); !ok {
		return fmt.Errorf("checkpoint was written with another config: %s: %w", what, ErrCheckpoint)
	}
	if len(ck.Pairs) != len(t.pairs) {
		return fmt.Errorf("checkpoint has %d adapted modules, the run %d (another model or config): %w", len(ck.Pairs), len(t.pairs), ErrCheckpoint)
	}
	off := 0
	for i, p := range t.pairs {
		l, s := t.lins[i], ck.Pairs[i]
		if s != (PairShape{Layer: l.Layer, Module: l.Module, In: l.In, Out: l.Out, Rank: p.Rank}) {
			return fmt.Errorf("checkpoint module %d is %+v, the model's %s of block %d is %dx%d rank %d (another model): %w",
				i, s, moduleNames[l.Module], l.Layer, l.Out, l.In, p.Rank, ErrCheckpoint)
		}
		for _, v := range [][]float32{p.A, p.B, p.mA, p.vA, p.mB, p.vB} {
			for j := range v {
				v[j] = math.Float32frombits(binary.LittleEndian.Uint32(ck.tensors[off:]))
				off += 4
			}
		}
		clear(p.GA)
		clear(p.GB)
	}
	if err := t.src.UnmarshalBinary(ck.RNG); err != nil {
		return fmt.Errorf("checkpoint RNG state: %v: %w", err, ErrCheckpoint)
	}
	t.step, t.epoch, t.next, t.order = ck.Step, ck.Epoch, ck.Next, slices.Clone(ck.Order)
	return nil
}
