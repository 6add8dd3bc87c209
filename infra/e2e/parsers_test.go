package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// parsersScript reads each playlist named on its command line with two
// HLS parsers no one here wrote, as players and packagers that use them
// would: hls-parser in strict mode (it throws on anything RFC 8216 does
// not allow) and video.js's m3u8-parser (it warns on what it skips).
const parsersScript = `
const fs = require("fs");
const HLS = require("hls-parser");
const m3u8 = require("m3u8-parser");
HLS.setOptions({strictMode: true});
let bad = 0;
for (const f of process.argv.slice(2)) {
  const text = fs.readFileSync(f, "utf8");
  try { HLS.parse(text); } catch (e) { console.log(f + ": hls-parser: " + e.message); bad++; }
  const p = new m3u8.Parser();
  const warns = [];
  p.on("warn", w => warns.push(w.message));
  p.push(text);
  p.end();
  if (warns.length) { console.log(f + ": m3u8-parser: " + warns.join("; ")); bad++; }
}
process.exit(bad ? 1 : 0);
`

// parsersAccept fails t unless both parsers take every playlist (name ->
// bytes). scripts/setup.sh installs them with the console's npm packages.
func parsersAccept(t testing.TB, playlists map[string][]byte) {
	t.Helper()
	if out := parsersRefuse(t, playlists); out != "" {
		t.Errorf("playlist parsers refuse:\n%s", out)
	}
}

// The check itself refuses what RFC 8216 does not allow: a segment longer
// than the target duration, a target duration that is no number.
func TestParsersRefuseBadPlaylists(t *testing.T) {
	for name, body := range map[string]string{
		"too long":   "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:6.0,\na.ts\n#EXT-X-ENDLIST\n",
		"bad target": "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:six\n#EXTINF:6.0,\na.ts\n#EXT-X-ENDLIST\n",
	} {
		if out := parsersRefuse(t, map[string][]byte{"bad.m3u8": []byte(body)}); out == "" {
			t.Errorf("%s: accepted", name)
		}
	}
	good := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\na.ts\n#EXT-X-ENDLIST\n"
	if out := parsersRefuse(t, map[string][]byte{"good.m3u8": []byte(good)}); out != "" {
		t.Errorf("a plain VOD playlist refused: %s", out)
	}
}

// parsersRefuse is what the parsers say against the playlists ("" when
// both take every one).
func parsersRefuse(t testing.TB, playlists map[string][]byte) string {
	t.Helper()
	modules := nodeModules(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "parse.js")
	if err := os.WriteFile(script, []byte(parsersScript), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{script}
	names := make([]string, 0, len(playlists))
	for name := range playlists {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		f := filepath.Join(dir, fmt.Sprintf("%02d-%s", i, strings.ReplaceAll(name, "/", "_")))
		if err := os.WriteFile(f, playlists[name], 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, f)
	}
	cmd := exec.Command("node", args...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return ""
	}
	if _, exited := err.(*exec.ExitError); !exited {
		t.Fatalf("node: %v", err)
	}
	return string(out)
}

// nodeModules is where scripts/setup.sh installs the console's npm
// packages, the tests' parsers and players among them.
func nodeModules(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("SEGFLOW_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "segflow")
	}
	modules := filepath.Join(cache, "console", "node_modules")
	for _, pkg := range []string{"hls-parser", "m3u8-parser", "dashjs"} {
		if _, err := os.Stat(filepath.Join(modules, pkg)); err != nil {
			t.Fatalf("npm package %s is not installed (scripts/setup.sh): %v", pkg, err)
		}
	}
	return modules
}
