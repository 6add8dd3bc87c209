#!/usr/bin/env bash
# setup.sh installs everything segflow and its tests need on a fresh Debian
# machine and is cheap to run again: apt packages are skipped when present,
# and the MinIO server is built from source once into a cache folder outside
# the work tree so that every clone (CI included) reuses it. (mc, for people
# at a shell, is built by scripts/up.sh; no test needs it.)
set -euo pipefail

CACHE="${SEGFLOW_CACHE:-$HOME/.cache/segflow}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

need_apt=()
# ffmpeg for every media stage, DejaVu for the text watermark, tesseract
# and pocketsphinx (with the English models Debian ships) for aitag,
# espeak-ng to make speech in the tests, PostgreSQL for the shared catalog
# (its tests start a throwaway server), chromium for the console's browser
# test.
for pkg in ffmpeg fonts-dejavu-core tesseract-ocr tesseract-ocr-eng pocketsphinx pocketsphinx-en-us espeak-ng postgresql chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# MinIO is AGPL: we only ever run it as a separate process, never import it.
build() { # build NAME MODULE
  if [ ! -x "$BIN/$1" ]; then
    echo "setup: building $1 from source (first run only, a few minutes)" >&2
    GOBIN="$BIN" go install "$2@latest"
  fi
}
build minio github.com/minio/minio

# staticcheck, pinned: the tests' lint (scripts/test.sh). The version is in
# the file name, so changing it here builds the new one once.
STATICCHECK=v0.8.2
if [ ! -x "$BIN/staticcheck-$STATICCHECK" ]; then
  echo "setup: building staticcheck $STATICCHECK (first run only)" >&2
  tmp="$(mktemp -d)"
  GOBIN="$tmp" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK"
  mv "$tmp/staticcheck" "$BIN/staticcheck-$STATICCHECK"
  rmdir "$tmp"
fi
ln -sf "staticcheck-$STATICCHECK" "$BIN/staticcheck"

# The console's hls.js, from npm at the version its package-lock pins,
# installed once per lock into the cache and copied where the segflow
# binary embeds it; beside it the HLS parsers the tests check every
# playlist with (hls-parser, m3u8-parser: infra/e2e/parsers_test.go).
WEB="$(cd "$(dirname "$0")/.." && pwd)/infra/console/web"
NPMDIR="$CACHE/console"
if ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if ! cmp -s "$WEB/package-lock.json" "$NPMDIR/package-lock.json" || [ ! -f "$NPMDIR/node_modules/hls.js/dist/hls.min.js" ]; then
  mkdir -p "$NPMDIR"
  cp "$WEB/package.json" "$WEB/package-lock.json" "$NPMDIR/"
  (cd "$NPMDIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cmp -s "$NPMDIR/node_modules/hls.js/dist/hls.min.js" "$WEB/static/vendor/hls.min.js" ||
  cp "$NPMDIR/node_modules/hls.js/dist/hls.min.js" "$WEB/static/vendor/hls.min.js"

echo "$BIN"
