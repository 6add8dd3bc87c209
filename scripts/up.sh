#!/usr/bin/env bash
# up.sh: everything from a fresh Debian machine to a finished VOD job on the
# embedded defaults. It installs what is missing (scripts/setup.sh), builds
# the segflow CLI, starts the local stack in the background (MinIO, NATS,
# router, the local runtime as OpenFaaS gateway, every function of
# stack.yml), then uploads a generated 20 s 1080p clip and waits for its HLS
# ladder. `segflow down` (or `.segflow/bin/segflow down`) stops the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(bash scripts/setup.sh | tail -n 1)
# mc, MinIO's client, for the README's `mc cp` examples: built once, like MinIO.
[ -x "$bin/mc" ] || { echo "up: building mc from source (first run only)" >&2; GOBIN="$bin" go install github.com/minio/mc@latest; }
export SEGFLOW_HOME="${SEGFLOW_HOME:-$PWD/.segflow}"
mkdir -p "$SEGFLOW_HOME/bin"
# The commit goes into /system/info (faas-cli version, the certifier).
pkg=github.com/segflow/segflow/infra/provider/handlers
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
go build -ldflags "-X $pkg.Commit=$commit -X $pkg.Version=$(git describe --tags --always 2>/dev/null || echo dev)" \
  -o "$SEGFLOW_HOME/bin/segflow" ./infra/cmd/segflow
segflow="$SEGFLOW_HOME/bin/segflow"

"$segflow" down >/dev/null 2>&1 || true
"$segflow" up --detach "$@"

demo="$SEGFLOW_HOME/demo.mp4"
if [ ! -f "$demo" ]; then
  ffmpeg -hide_banner -nostdin -v error -y \
    -f lavfi -i testsrc2=size=1920x1080:rate=30:duration=20 \
    -f lavfi -i sine=frequency=1000:sample_rate=48000:duration=20 \
    -c:v libx264 -preset ultrafast -crf 18 -g 60 -pix_fmt yuv420p -c:a aac -ac 2 "$demo"
fi
id=$("$segflow" upload --quiet "$demo")
echo "uploaded $demo as asset $id"
"$segflow" wait "$id"
# shellcheck disable=SC1091
. "$SEGFLOW_HOME/env"
echo "play it: http://$S3_ENDPOINT/$S3_BUCKET/assets/$id/master.m3u8"
echo "or in the console: $SEGFLOW_CONSOLE#asset=$id (user $SEGFLOW_GATEWAY_USER, password in $SEGFLOW_HOME/env)"
echo "the stack keeps running; stop it with: $segflow down --repo $PWD"
