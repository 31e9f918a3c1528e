package examples_test

// TestReadme runs the examples of the repository's README.md, so that the
// README cannot drift from the tool.
//
// Every ```sh, ```bash, ```shell and ```console block that invokes qtool is
// executed, block after block in README order, in one scratch folder that
// holds copies of the bundled inputs the README names (outputs go to out/
// there, never into the repository). In console blocks a command is a line
// starting with "$ " (plus its "\" continuation lines) and the lines after it
// are its output; in the other blocks every complete shell command (a line, a
// "\"-continued line, a whole for/if construct) is one command. Each command
// runs with bash -o pipefail, with the qtool built by TestMain first on PATH,
// and must exit 0, or N when it carries a "# exit N" comment. Each output line
// a console block shows must appear, in order and after trimming, among the
// lines the command prints (stdout and stderr together); a line holding only
// "…" stands for lines left out, and a "…" inside a line for any text.
//
// A block preceded by <!-- readme-test: skip (REASON) --> is not run; shell
// blocks without a qtool command (make, go install, go run) are build
// instructions and are not run either (console blocks always are). A command needing jq, python3 or sha256sum is
// skipped, with a log line, where that tool is missing. The test also checks
// that every qtool subcommand has at least one executed example, and that
// every inline `qtool X` names a real subcommand.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeInputs are the bundled files the README's examples read, relative to
// the repository root; they are copied into the scratch folder.
var readmeInputs = []string{
	"fixtures/stories260K",
	"fixtures/stories260K-hf",
	"lora/testdata/stories260K-lora-peft",
	"llama/testdata/tinystories-head-24k.txt",
	"train/testdata/shakespeare-30k.txt",
}

// readmeCommandTimeout bounds one README command.
const readmeCommandTimeout = 2 * time.Minute

type readmeCmd struct {
	line   int      // README line where the command starts
	text   string   // shell text, continuation lines included
	want   int      // expected exit code
	output []string // console blocks: the output lines shown
}

type readmeBlock struct {
	line    int    // README line of the opening fence
	lang    string // info string of the fence
	heading string // the section it is in
	skip    string // reason given by a readme-test: skip marker
	cmds    []readmeCmd
}

var (
	usesQtool     = regexp.MustCompile(`(?m)(^|[\s|;&(])qtool(\s|$)`)
	shellComments = regexp.MustCompile(`(?m)(^|\s)#.*$`)
	exitComment   = regexp.MustCompile(`\s#\s*exit (\d+)\b`)
	skipMarker    = regexp.MustCompile(`^<!--\s*readme-test:\s*skip\s*\((.+)\)\s*-->$`)
	inlineQtool   = regexp.MustCompile("`qtool ([a-z-]+)[^`]*`")
	optionalTool  = []string{"jq", "python3", "sha256sum"}
)

// commandTool reports whether shell text runs the command tool.
func commandTool(text, tool string) bool {
	return regexp.MustCompile(`(?m)(^|[\s|;&(])` + regexp.QuoteMeta(tool) + `(\s|$)`).MatchString(text)
}

func isShellLang(lang string) bool {
	switch lang {
	case "sh", "bash", "shell", "console":
		return true
	}
	return false
}

// parseReadme splits README text into its fenced blocks, with the commands of
// the shell and console ones.
func parseReadme(t *testing.T, text string) []readmeBlock {
	t.Helper()
	lines := strings.Split(text, "\n")
	var blocks []readmeBlock
	heading, marker := "", ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "#") {
			heading = strings.TrimSpace(strings.TrimLeft(l, "#"))
		}
		if m := skipMarker.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			marker = strings.TrimSpace(m[1])
			continue
		}
		if strings.Contains(l, "readme-test:") {
			t.Errorf("README.md:%d: malformed marker %q (want <!-- readme-test: skip (REASON) -->)", i+1, l)
		}
		if !strings.HasPrefix(l, "```") {
			if strings.TrimSpace(l) != "" {
				marker = ""
			}
			continue
		}
		b := readmeBlock{line: i + 1, lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), heading: heading, skip: marker}
		marker = ""
		var body []string
		start := i + 2
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		switch {
		case b.lang == "console":
			b.cmds = parseConsole(t, body, start)
		case isShellLang(b.lang):
			b.cmds = parseShell(t, body, start)
		default:
			for j, bl := range body {
				if s := strings.TrimSpace(bl); strings.HasPrefix(s, "qtool ") || strings.HasPrefix(s, "$ qtool ") {
					t.Errorf("README.md:%d: a qtool command in a ```%s block, which the README test does not run: %s", start+j, b.lang, s)
				}
			}
		}
		blocks = append(blocks, b)
	}
	return blocks
}

func expectedExit(t *testing.T, line int, text string) int {
	m := exitComment.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Errorf("README.md:%d: %q: %v", line, m[0], err)
	}
	return n
}

func parseConsole(t *testing.T, body []string, start int) []readmeCmd {
	t.Helper()
	var cmds []readmeCmd
	for j := 0; j < len(body); j++ {
		l := body[j]
		if !strings.HasPrefix(l, "$ ") {
			if len(cmds) == 0 {
				if strings.TrimSpace(l) != "" {
					t.Errorf("README.md:%d: console output before any \"$ \" command: %q", start+j, l)
				}
				continue
			}
			cmds[len(cmds)-1].output = append(cmds[len(cmds)-1].output, l)
			continue
		}
		c := readmeCmd{line: start + j, text: strings.TrimPrefix(l, "$ ")}
		for strings.HasSuffix(strings.TrimRight(c.text, " "), `\`) && j+1 < len(body) {
			j++
			c.text += "\n" + body[j]
		}
		c.want = expectedExit(t, c.line, c.text)
		cmds = append(cmds, c)
	}
	return cmds
}

// parseShell splits a shell block into complete commands: lines are joined
// until bash -n accepts the text (a for loop, an if, "\" continuations).
func parseShell(t *testing.T, body []string, start int) []readmeCmd {
	t.Helper()
	var cmds []readmeCmd
	var cur []string
	first := 0
	for j, l := range body {
		if len(cur) == 0 {
			if s := strings.TrimSpace(l); s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			first = j
		}
		cur = append(cur, l)
		if strings.HasSuffix(strings.TrimRight(l, " "), `\`) {
			continue
		}
		text := strings.Join(cur, "\n")
		if exec.Command("bash", "-n", "-c", text).Run() != nil && j+1 < len(body) {
			continue
		}
		c := readmeCmd{line: start + first, text: text}
		c.want = expectedExit(t, c.line, text)
		cmds = append(cmds, c)
		cur = nil
	}
	return cmds
}

// matchShown reports whether a real output line matches a shown one, in which
// each "…" stands for any text.
func matchShown(shown, real string) bool {
	parts := strings.Split(shown, "…")
	for k := range parts {
		parts[k] = strings.TrimSpace(parts[k])
	}
	if len(parts) == 1 {
		return real == parts[0]
	}
	if !strings.HasPrefix(real, parts[0]) {
		return false
	}
	rest := real[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		k := strings.Index(rest, p)
		if k < 0 {
			return false
		}
		rest = rest[k+len(p):]
	}
	return strings.HasSuffix(rest, last)
}

// checkShown checks that the shown output lines appear, in order, among the
// real ones.
func checkShown(shown []string, output string) error {
	real := strings.Split(output, "\n")
	for k := range real {
		real[k] = strings.TrimSpace(real[k])
	}
	at := 0
	for _, s := range shown {
		s = strings.TrimSpace(s)
		if s == "" || s == "…" || s == "..." {
			continue
		}
		found := false
		for ; at < len(real); at++ {
			if matchShown(s, real[at]) {
				found = true
				at++
				break
			}
		}
		if !found {
			return fmt.Errorf("shown output line not found (in order) in the real output: %q", s)
		}
	}
	return nil
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// subcommands lists qtool's subcommands from its help, without "help".
func subcommands(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(qtool, "--help").Output()
	if err != nil {
		t.Fatalf("qtool --help: %v", err)
	}
	var names []string
	in := false
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "Available Commands:"):
			in = true
		case in && strings.TrimSpace(l) == "":
			in = false
		case in:
			if f := strings.Fields(l); len(f) > 0 && f[0] != "help" {
				names = append(names, f[0])
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("no subcommands in qtool --help:\n%s", out)
	}
	return names
}

func TestReadme(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found: the README's examples are shell commands")
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseReadme(t, string(readme))

	subs := subcommands(t)
	for _, m := range inlineQtool.FindAllStringSubmatch(string(readme), -1) {
		known := false
		for _, s := range subs {
			known = known || m[1] == s
		}
		if !known {
			t.Errorf("README.md: inline %s names no qtool subcommand", m[0])
		}
	}

	work := t.TempDir()
	for _, p := range readmeInputs {
		if err := copyTree(filepath.Join(root, p), filepath.Join(work, p)); err != nil {
			t.Fatalf("copying %s: %v", p, err)
		}
	}
	env := append(os.Environ(),
		"PATH="+filepath.Dir(qtool)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"LC_ALL=C", // ls and globs sort the same everywhere
	)
	missing := map[string]bool{}
	for _, tool := range optionalTool {
		if _, err := exec.LookPath(tool); err != nil {
			missing[tool] = true
		}
	}

	var ran []string // commands executed, for the coverage check
	for _, b := range blocks {
		if !isShellLang(b.lang) {
			continue
		}
		hasQtool := b.lang == "console"
		for _, c := range b.cmds {
			hasQtool = hasQtool || usesQtool.MatchString(shellComments.ReplaceAllString(c.text, ""))
		}
		switch {
		case b.skip != "":
			t.Logf("README.md:%d (%s): not run: %s", b.line, b.heading, b.skip)
			continue
		case !hasQtool:
			t.Logf("README.md:%d (%s): no qtool command, not run", b.line, b.heading)
			continue
		}
		for _, c := range b.cmds {
			run, err := runReadmeCmd(t, work, env, missing, c)
			if err != nil {
				t.Errorf("README.md:%d (%s): %s\n%v", c.line, b.heading, c.text, err)
			}
			if run {
				ran = append(ran, c.text)
			}
		}
	}

	for _, s := range subs {
		re := regexp.MustCompile(`(^|[\s|;&(])qtool\s+` + regexp.QuoteMeta(s) + `(\s|$)`)
		found := false
		for _, c := range ran {
			found = found || re.MatchString(c)
		}
		if !found {
			t.Errorf("no README example of qtool %s was run", s)
		}
	}
	t.Logf("%d README commands run", len(ran))
}

// runReadmeCmd runs one README command in work and checks its exit code and
// shown output. A command needing a missing optional tool is logged and not
// run (false).
func runReadmeCmd(t *testing.T, work string, env []string, missing map[string]bool, c readmeCmd) (bool, error) {
	t.Helper()
	for tool := range missing {
		if commandTool(c.text, tool) {
			t.Logf("README.md:%d: %s not found, not run: %s", c.line, tool, c.text)
			return false, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), readmeCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", c.text)
	cmd.Dir, cmd.Env = work, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return true, err
		}
		code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		return true, fmt.Errorf("timed out after %v\n%s", readmeCommandTimeout, out.String())
	}
	if code != c.want {
		return true, fmt.Errorf("exit %d, README says %d\n%s", code, c.want, out.String())
	}
	if err := checkShown(c.output, out.String()); err != nil {
		return true, fmt.Errorf("%v\nreal output:\n%s", err, out.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Logf("README.md:%d took %v", c.line, d.Round(time.Millisecond))
	}
	return true, nil
}
