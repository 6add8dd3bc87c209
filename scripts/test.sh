#!/usr/bin/env bash
# test.sh installs what the tests need (scripts/setup.sh) and runs every Go
# test of the workspace against real MinIO, ffmpeg and HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(bash scripts/setup.sh)"
# Every module of go.work; the test fixtures under testdata are built by the
# tests themselves.
mapfile -t pkgs < <(go list -m -f '{{.Dir}}/...' | sed "s|^$PWD/|./|")
unformatted="$(gofmt -l functions infra shared template)"
[ -z "$unformatted" ] || { echo "test: not gofmt-formatted:" $unformatted >&2; exit 1; }
go vet "${pkgs[@]}"
"$bin/staticcheck" "${pkgs[@]}"
exec go test -count=1 -timeout 40m "$@" "${pkgs[@]}"
