// segflow console, Go live: the browser publishes its camera and
// microphone to the relay's WHIP endpoint (RFC 9725): one POST of the
// offer with every ICE candidate in it, the stream key as bearer token;
// DELETE of the session's URL to stop.
"use strict";

const $ = (sel) => document.querySelector(sel);
const ui = { key: $("#stream-key"), start: $("#start"), stop: $("#stop"), camera: $("#camera"), size: $("#size"),
  state: $("#live-state"), stats: $("#live-stats"), error: $("#live-error"), video: $("#preview-video") };
// For tests and the curious: the session as it stands.
const live = { pc: null, stream: null, session: null, state: "off", codec: "", bytesSent: 0, timer: null };
window.segflowLive = live;

function setState(s, error = "") {
  live.state = s;
  ui.state.textContent = s;
  ui.state.className = "state " + ({ live: "complete", failed: "failed", connecting: "processing" }[s] || "");
  ui.error.textContent = error;
  ui.start.disabled = s === "connecting" || s === "live";
  ui.stop.disabled = !(s === "connecting" || s === "live");
}

async function whipURL() {
  const resp = await fetch(location.origin + "/ui/api/config", { credentials: "same-origin" });
  const cfg = await resp.json();
  if (!cfg.whip) throw new Error("this segflow has no WHIP ingest (the relay runs without --whip)");
  return new URL(cfg.whip, location.origin).href;
}

async function listCameras() {
  try {
    for (const d of await navigator.mediaDevices.enumerateDevices()) {
      if (d.kind === "videoinput" && d.deviceId) ui.camera.append(new Option(d.label || "camera " + (ui.camera.length), d.deviceId));
    }
  } catch { /* no devices listed before permission: the default one is used */ }
}

// The relay passes H.264 through and transcodes anything else: ask for
// it first where the browser can send it.
function preferH264(transceiver) {
  const caps = RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => c.mimeType === "video/H264" && /packetization-mode=1/.test(c.sdpFmtpLine || ""));
  const rest = caps.codecs.filter((c) => !h264.includes(c));
  if (h264.length) transceiver.setCodecPreferences([...h264, ...rest]);
}

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000); // what is gathered by then is enough on a LAN
  });
}

async function start(ev) {
  ev.preventDefault();
  setState("connecting");
  try {
    const endpoint = await whipURL();
    const [w, h] = ui.size.value.split("x").map(Number);
    const video = { width: { ideal: w }, height: { ideal: h }, frameRate: { ideal: 30 } };
    if (ui.camera.value) video.deviceId = { exact: ui.camera.value };
    live.stream = await navigator.mediaDevices.getUserMedia({ video, audio: true });
    ui.video.srcObject = live.stream;
    const pc = new RTCPeerConnection();
    live.pc = pc;
    for (const track of live.stream.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: "sendonly", streams: [live.stream] });
      if (track.kind === "video") {
        preferH264(tr);
        // A browser starts at a low bitrate estimate and would shrink
        // the picture until it climbs: the relay's ladder is made from
        // the first keyframe's size, so keep the size and let the
        // quality climb instead.
        const params = tr.sender.getParameters();
        params.degradationPreference = "maintain-resolution";
        tr.sender.setParameters(params).catch(() => {});
      }
    }
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") setState("live");
      if (pc.connectionState === "failed") stop("connection lost");
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const resp = await fetch(endpoint, { method: "POST", body: pc.localDescription.sdp,
      headers: { "Content-Type": "application/sdp", Authorization: "Bearer " + ui.key.value } });
    const body = await resp.text();
    if (resp.status !== 201) {
      const why = { 401: "wrong stream key", 409: "this stream is already publishing", 406: "the relay takes none of this browser's codecs", 429: "too many wrong keys: wait" }[resp.status];
      throw new Error(`${resp.status}: ${why || body.trim()}`);
    }
    live.session = new URL(resp.headers.get("Location"), endpoint).href;
    await pc.setRemoteDescription({ type: "answer", sdp: body });
    live.timer = setInterval(stats, 1000);
  } catch (err) {
    await stop(err.message || String(err));
  }
}

async function stats() {
  if (!live.pc) return;
  const report = await live.pc.getStats();
  let bytes = 0, fps = 0, size = "";
  report.forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") {
      bytes = s.bytesSent; fps = s.framesPerSecond || 0; size = s.frameWidth ? `${s.frameWidth}×${s.frameHeight}` : "";
      const c = report.get(s.codecId);
      if (c) live.codec = c.mimeType;
    }
  });
  const kbps = Math.round((bytes - live.bytesSent) * 8 / 1000);
  live.bytesSent = bytes;
  ui.stats.textContent = `${live.codec} ${size} ${Math.round(fps)} fps, ${kbps} kb/s`;
}

async function stop(error = "") {
  clearInterval(live.timer);
  const session = live.session;
  live.session = null;
  if (session) {
    try { await fetch(session, { method: "DELETE" }); } catch { /* the relay ends it by its ICE timeout */ }
  }
  if (live.pc) live.pc.close();
  if (live.stream) live.stream.getTracks().forEach((t) => t.stop());
  live.pc = live.stream = null;
  ui.video.srcObject = null;
  ui.stats.textContent = "";
  setState(error ? "failed" : "off", error);
}

$("#golive-form").addEventListener("submit", start);
ui.stop.addEventListener("click", () => stop());
// Closing the page ends the publish at once rather than by ICE timeout.
window.addEventListener("pagehide", () => { if (live.session) fetch(live.session, { method: "DELETE", keepalive: true }); });
listCameras();
