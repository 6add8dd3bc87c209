package envfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// What Write writes, Read reads back, and a shell that sources the file
// sees the same values, quotes included.
func TestRoundTripAndShell(t *testing.T) {
	p := filepath.Join(t.TempDir(), "env")
	in := Env{PID: 4242, Home: "/srv/seg flow", Gateway: "http://127.0.0.1:8080", Console: "http://127.0.0.1:8080/ui/",
		GatewayUser: "admin", GatewayPassword: `it's "quoted" $HOME`, S3Endpoint: "127.0.0.1:9000",
		S3AccessKey: "segflow", S3SecretKey: "s3cr3t", S3Bucket: "media", NATS: "nats://127.0.0.1:4222",
		Functions: "split,transcode", RTMPURL: "rtmp://127.0.0.1:1935/live/k", SRTURL: "srt://127.0.0.1:8890?streamid=k"}
	if err := Write(p, in); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	out, err := Read(p)
	if err != nil || out != in {
		t.Fatalf("read back %+v, %v\nwant %+v", out, err, in)
	}
	sh, err := exec.Command("sh", "-c", ". "+p+` && printf '%s|%s|%s|%s' "$SEGFLOW_GATEWAY_PASSWORD" "$OPENFAAS_URL" "$SEGFLOW_HOME" "$SEGFLOW_PID"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join([]string{in.GatewayPassword, in.Gateway, in.Home, "4242"}, "|"); string(sh) != want {
		t.Fatalf("the shell sees %q, want %q", sh, want)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing file read without an error")
	}
}
