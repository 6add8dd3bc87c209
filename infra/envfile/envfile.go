// Package envfile is the env file `segflow up` writes (.segflow/env, mode
// 0600): a shell sources it (`. .segflow/env`), the CLI and the tests read
// it as an Env. The variable names are spelled here only.
package envfile

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Env is where a running stack is and the credentials a user at a shell
// needs (NATS's stay in the auth folder).
type Env struct {
	PID             int    // SEGFLOW_PID
	Home            string // SEGFLOW_HOME
	Gateway         string // SEGFLOW_GATEWAY and OPENFAAS_URL (what faas-cli reads)
	Console         string // SEGFLOW_CONSOLE
	GatewayUser     string // SEGFLOW_GATEWAY_USER
	GatewayPassword string // SEGFLOW_GATEWAY_PASSWORD
	S3Endpoint      string // S3_ENDPOINT (host:port)
	S3AccessKey     string // S3_ACCESS_KEY (MinIO's root)
	S3SecretKey     string // S3_SECRET_KEY
	S3Bucket        string // S3_BUCKET
	NATS            string // SEGFLOW_NATS (no credentials)
	Functions       string // SEGFLOW_FUNCTIONS, comma-separated
	RTMPURL         string // SEGFLOW_RTMP_URL, with the demo stream key
	SRTURL          string // SEGFLOW_SRT_URL, with the demo stream key
	WHIPURL         string // SEGFLOW_WHIP_URL: POST offers there, the stream key as bearer token
	WHEPURL         string // SEGFLOW_WHEP_URL: a live stream's WebRTC playback, {stream} to replace
}

type field struct {
	name string
	v    *string
}

// fields pairs each variable with its field; pid stands for PID.
func (e *Env) fields(pid *string) []field {
	return []field{
		{"SEGFLOW_PID", pid}, {"SEGFLOW_HOME", &e.Home}, {"SEGFLOW_GATEWAY", &e.Gateway},
		{"OPENFAAS_URL", &e.Gateway}, {"SEGFLOW_CONSOLE", &e.Console},
		{"SEGFLOW_GATEWAY_USER", &e.GatewayUser}, {"SEGFLOW_GATEWAY_PASSWORD", &e.GatewayPassword},
		{"S3_ENDPOINT", &e.S3Endpoint}, {"S3_ACCESS_KEY", &e.S3AccessKey}, {"S3_SECRET_KEY", &e.S3SecretKey},
		{"S3_BUCKET", &e.S3Bucket}, {"SEGFLOW_NATS", &e.NATS}, {"SEGFLOW_FUNCTIONS", &e.Functions},
		{"SEGFLOW_RTMP_URL", &e.RTMPURL}, {"SEGFLOW_SRT_URL", &e.SRTURL},
		{"SEGFLOW_WHIP_URL", &e.WHIPURL}, {"SEGFLOW_WHEP_URL", &e.WHEPURL},
	}
}

// Vars are the variables the file exports, empty ones left out.
func (e Env) Vars() map[string]string {
	pid := ""
	if e.PID > 0 {
		pid = strconv.Itoa(e.PID)
	}
	out := map[string]string{}
	for _, f := range e.fields(&pid) {
		if *f.v != "" {
			out[f.name] = *f.v
		}
	}
	return out
}

// Write writes e to path (0600), replacing it whole.
func Write(path string, e Env) error {
	vars := e.Vars()
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	var sb strings.Builder
	sb.WriteString("# written by segflow up; source it: . " + path + "\n")
	for _, k := range names {
		fmt.Fprintf(&sb, "export %s='%s'\n", k, strings.ReplaceAll(vars[k], "'", `'\''`))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Read reads what Write wrote.
func Read(path string) (Env, error) {
	f, err := os.Open(path)
	if err != nil {
		return Env{}, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
		}
		vars[k] = v
	}
	if err := sc.Err(); err != nil {
		return Env{}, fmt.Errorf("env file %s: %w", path, err)
	}
	var e Env
	pid := ""
	for _, f := range e.fields(&pid) {
		if v, ok := vars[f.name]; ok {
			*f.v = v
		}
	}
	if pid != "" {
		if e.PID, err = strconv.Atoi(pid); err != nil {
			return Env{}, fmt.Errorf("env file %s: SEGFLOW_PID %q: %w", path, pid, err)
		}
	}
	return e, nil
}

// FromEnviron is an Env from this process's environment: a shell that
// sourced the file, or variables set by hand (OPENFAAS_URL wins over
// SEGFLOW_GATEWAY, as faas-cli reads it).
func FromEnviron() Env {
	var e Env
	pid := ""
	for _, f := range e.fields(&pid) {
		if v := os.Getenv(f.name); v != "" {
			*f.v = v
		}
	}
	e.PID, _ = strconv.Atoi(pid)
	return e
}
