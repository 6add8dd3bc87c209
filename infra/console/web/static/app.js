// segflow console: one page, no framework. Everything it shows comes from
// the gateway (/ui/api, /api, /system/deadletters) and from the bucket's
// public assets/ objects; uploads go straight to the bucket.
"use strict";

const $ = (sel) => document.querySelector(sel);
const video = $("#player");
// sources: the upload key of each asset this page uploaded, so that its
// status reads "pending" rather than 404 until split has written one.
const state = { selected: null, media: null, hls: null, status: null, cues: [], tags: [], pendingSeek: null, sources: {} };
// whepCodec is the only video codec WebRTC playback offers ("": all).
let whepCodec = "";
// For tests and the curious: the player and the hls.js instance.
window.segflow = { get hls() { return state.hls; }, get whep() { return state.whep; }, video, state };

async function api(path, opts = {}) {
  // Against the origin, not the page URL: a page opened as
  // http://user:pass@host/ui/ must not put credentials in request URLs
  // (fetch refuses them); the browser's auth cache sends them instead.
  const resp = await fetch(location.origin + path, { credentials: "same-origin", headers: { "Content-Type": "application/json" }, ...opts });
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { error: text.trim() }; }
  if (!resp.ok) {
    const err = new Error((body && body.error) || `${resp.status} ${resp.statusText}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    // Through the CSSOM: the page's CSP forbids style attributes.
    else if (k === "style") Object.assign(e.style, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

const fmtTime = (s) => {
  s = Math.max(0, s || 0);
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
};

// ---- upload: presigned multipart straight to the bucket, resumable ----

const PARALLEL_PARTS = 3;

function putPart(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(`part upload: ${xhr.status} ${xhr.responseText.slice(0, 200)}`)));
    xhr.onerror = () => reject(new Error("part upload: network error"));
    xhr.send(blob);
  });
}

async function upload(file) {
  const status = $("#upload-status");
  const bar = $("#progress");
  const priv = $("#private").checked;
  const memo = `segflow-upload:${file.name}|${file.size}|${file.lastModified}|${priv}`;
  bar.hidden = false;
  bar.value = 0;
  try {
    let plan = JSON.parse(localStorage.getItem(memo) || "null");
    const done = new Map();
    if (plan) {
      try {
        for (const p of await api(`/ui/api/uploads/parts?key=${encodeURIComponent(plan.key)}&uploadId=${encodeURIComponent(plan.uploadId)}`)) done.set(p.number, p.size);
        status.textContent = `Resuming ${file.name}: ${done.size} of ${plan.parts} parts already uploaded`;
      } catch (e) {
        plan = null; // completed or aborted meanwhile: start over
      }
    }
    if (!plan) {
      plan = await api("/ui/api/uploads", { method: "POST", body: JSON.stringify({ name: file.name, size: file.size, type: file.type, private: priv }) });
      localStorage.setItem(memo, JSON.stringify(plan));
      status.textContent = `Uploading ${file.name}`;
    }
    const sentBefore = [...done.values()].reduce((a, b) => a + b, 0);
    const inflight = new Map();
    const show = () => {
      const sent = sentBefore + [...inflight.values()].reduce((a, b) => a + b, 0);
      bar.value = file.size ? sent / file.size : 1;
    };
    show();
    const todo = [];
    for (let n = 1; n <= plan.parts; n++) if (!done.has(n)) todo.push(n);
    const worker = async () => {
      while (todo.length) {
        const n = todo.shift();
        const blob = file.slice((n - 1) * plan.partSize, Math.min(file.size, n * plan.partSize));
        const { url } = await api("/ui/api/uploads/sign", { method: "POST", body: JSON.stringify({ key: plan.key, uploadId: plan.uploadId, part: n }) });
        inflight.set(n, 0);
        await putPart(url, blob, (loaded) => { inflight.set(n, loaded); show(); });
        inflight.set(n, blob.size);
        show();
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_PARTS }, worker));
    const res = await api("/ui/api/uploads/complete", { method: "POST", body: JSON.stringify({ key: plan.key, uploadId: plan.uploadId }) });
    localStorage.removeItem(memo);
    bar.value = 1;
    status.textContent = `Uploaded ${file.name} as asset ${res.asset}`;
    status.dataset.asset = res.asset;
    state.sources[res.asset] = res.key;
    select(res.asset);
  } catch (e) {
    status.textContent = `Upload of ${file.name} failed: ${e.message}`;
    status.classList.add("error");
  }
}

function setupDrop() {
  const drop = $("#drop");
  const input = $("#file");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    for (const f of e.dataTransfer.files) upload(f);
  });
  input.addEventListener("change", () => { for (const f of input.files) upload(f); input.value = ""; });
}

// ---- asset list, live streams, dead letters ----

async function refreshAssets() {
  let list = [];
  try { list = await api("/api/assets"); } catch (e) { return; }
  list.sort((a, b) => (b.created || "").localeCompare(a.created || ""));
  const ul = $("#assets");
  ul.replaceChildren(...list.map((a) => el("li", { class: "asset" + (a.id === state.selected ? " selected" : ""), dataset: { id: a.id }, onclick: () => select(a.id) },
    el("span", { class: `state ${a.state}` }, a.state), " ", a.source || a.id, " ", el("span", { class: "muted" }, a.duration ? fmtTime(a.duration) : ""))));
  const live = list.filter((a) => a.live && a.state !== "complete" && a.state !== "failed");
  $("#live").replaceChildren(...(live.length ? live.map((a) => el("li", { class: "live", dataset: { id: a.id } },
    el("a", { href: "#asset=" + a.id, onclick: () => select(a.id) }, a.id), " ", el("a", { href: a.playback, target: "_blank", rel: "noopener", class: "viewer" }, "viewer URL")))
    : [el("li", { class: "muted" }, "No stream is publishing.")]));
}

async function refreshDeadLetters() {
  let list = [];
  try { list = (await api("/system/deadletters")) || []; } catch (e) { return; }
  $("#replay-all").hidden = list.length === 0;
  $("#deadletters").replaceChildren(...(list.length ? list.map((d) => el("li", { class: "deadletter" },
    el("b", {}, d.function), " ", d.subject, el("br"), el("span", { class: "error" }, `${d.attempts} attempts: ${d.error}`), " ",
    el("button", { onclick: () => replay(d.id) }, "Replay"))) : [el("li", { class: "muted" }, "None.")]));
}

async function replay(id) {
  await api("/system/deadletters" + (id ? "?id=" + encodeURIComponent(id) : ""), { method: "POST" });
  refreshDeadLetters();
}

// ---- one asset: stage grid, player, storyboard, tags ----

const STAGE_ORDER = ["split", "watermark", "transcode", "qa", "thumbnail", "aitag"];
function stageRank(name) {
  const [base, sub] = name.split("/");
  const i = STAGE_ORDER.indexOf(base);
  return [i < 0 ? STAGE_ORDER.length : i, sub ? 1 : 0, sub || ""];
}
function byStage(a, b) {
  const x = stageRank(a), y = stageRank(b);
  return x[0] - y[0] || x[1] - y[1] || x[2].localeCompare(y[2], undefined, { numeric: true });
}

// renderQuality draws each rendition's SSIM per segment (qa's scores) as a
// small chart with its means, and the asset's quality warning.
function renderQuality(st) {
  $("#quality-warning").textContent = st.qualityWarning ? "quality: " + st.qualityWarning : "";
  const rungs = Object.keys(st.quality || {}).sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
  $("#quality").replaceChildren(...rungs.map((name) => {
    const q = st.quality[name];
    const points = (st.segments || []).filter((s) => s.quality && s.quality[name]).map((s) => [s.index, s.quality[name].ssim]);
    return el("figure", { class: "rung-quality", dataset: { rung: name, ssim: q.ssim.toFixed(4) } }, sparkline(points),
      el("figcaption", {}, `${name} SSIM ${q.ssim.toFixed(4)} (worst frame ${q.minSSIM.toFixed(3)}) · PSNR ${q.psnr.toFixed(1)} dB`));
  }));
}

function sparkline(points) {
  const NS = "http://www.w3.org/2000/svg", w = 160, h = 40;
  const svg = document.createElementNS(NS, "svg");
  for (const [k, v] of Object.entries({ viewBox: `0 0 ${w} ${h}`, width: w, height: h })) svg.setAttribute(k, v);
  if (!points.length) return svg;
  const lo = Math.min(0.9, ...points.map((p) => p[1])), maxX = Math.max(1, ...points.map((p) => p[0]));
  const xy = ([x, y]) => [(x / maxX) * (w - 6) + 3, (1 - (y - lo) / (1 - lo || 1)) * (h - 6) + 3];
  const title = document.createElementNS(NS, "title");
  title.textContent = `SSIM per segment, from ${lo.toFixed(2)} (bottom) to 1 (top)`;
  const line = document.createElementNS(NS, "polyline");
  for (const [k, v] of Object.entries({ points: points.map((p) => xy(p).map((c) => c.toFixed(1)).join(",")).join(" "),
    fill: "none", stroke: "#2563eb", "stroke-width": "1.5" })) line.setAttribute(k, v);
  svg.append(title, line, ...points.map((p) => {
    const [cx, cy] = xy(p), dot = document.createElementNS(NS, "circle");
    for (const [k, v] of Object.entries({ cx, cy, r: 2, fill: "#2563eb" })) dot.setAttribute(k, v);
    return dot;
  }));
  return svg;
}

function renderStatus(st) {
  renderQuality(st);
  $("#asset-state").textContent = st.state === "pending" ? "waiting for split" : st.state;
  $("#asset-state").className = `state ${st.state}`;
  $("#detail").dataset.state = st.state;
  $("#asset-error").textContent = st.error || "";
  $("#asset-stages").replaceChildren(...Object.entries(st.stages || {}).map(([k, v]) =>
    el("span", { class: `state ${v.state === "done" ? "complete" : v.state}`, title: v.error || "" }, `${k}: ${v.state}`, " ")));
  const names = new Set();
  for (const s of st.segments || []) for (const k of Object.keys(s.stages || {})) names.add(k);
  const cols = [...names].sort(byStage);
  $("#grid thead").replaceChildren(el("tr", {}, el("th", {}, "segment"), ...cols.map((c) => el("th", {}, c))));
  $("#grid tbody").replaceChildren(...(st.segments || []).map((s) => el("tr", {}, el("th", {}, String(s.index)),
    ...cols.map((c) => {
      const v = (s.stages || {})[c];
      const cls = v ? (v.state === "done" ? "done" : v.state) : "pending";
      return el("td", { class: `cell ${cls}`, title: v && v.error ? v.error : "" }, v ? (v.state === "done" ? "✓" : v.state === "failed" ? "✗" : "…") : "");
    }))));
}

async function select(id) {
  if (state.selected === id) return;
  state.selected = id;
  state.status = null;
  location.hash = "asset=" + id;
  $("#detail").hidden = false;
  $("#detail").dataset.state = "";
  $("#asset-title").textContent = id;
  $("#asset-state").textContent = "waiting for split";
  $("#asset-error").textContent = "";
  $("#grid thead").replaceChildren();
  $("#grid tbody").replaceChildren();
  $("#quality").replaceChildren();
  $("#quality-warning").textContent = "";
  $("#asset-ladder").textContent = "";
  $("#tags").replaceChildren();
  state.cues = [];
  state.tags = [];
  stopPlayer();
  video.removeAttribute("poster"); // the last asset's
  state.media = await api("/ui/api/media/" + encodeURIComponent(id));
  $("#asset-ladder").textContent = state.media.ladder ? "ladder " + state.media.ladder : "";
  $("#viewer-url").href = state.media.master;
  // A live publish plays over WebRTC (WHEP) while it runs; the switch
  // goes to its HLS ladder.
  $("#whep-switch").hidden = !state.media.whep;
  $("#whep").checked = !!state.media.whep;
  if (state.media.whep) startWHEP();
  document.querySelectorAll(".asset").forEach((li) => li.classList.toggle("selected", li.dataset.id === id));
  await refreshStatus();
}

async function refreshStatus() {
  const id = state.selected;
  if (!id) return;
  let st;
  const source = state.sources[id] ? "?source=" + encodeURIComponent(state.sources[id]) : "";
  try { st = await api("/ui/api/status/" + encodeURIComponent(id) + source); } catch (e) {
    if (e.status !== 404) $("#asset-error").textContent = e.message;
    return;
  }
  if (id !== state.selected) return;
  const before = state.status;
  state.status = st;
  renderStatus(st);
  // A file plays from its first segment while the rest is transcoded
  // (st.playable: its master is out, every playlist growing).
  const playable = st.state === "complete" || !!st.playable || (st.stages && st.stages.packager && st.stages.packager.state === "done");
  if (playable && !state.hls && !video.src && !state.whep && !$("#whep").checked) startPlayer();
  // The storyboard is read once thumbnail says it wrote it (it marks
  // itself done for the asset after its last segment; an asset can
  // complete before that), and the merged tags once the asset completes
  // and again when aitag is done: not on every poll.
  const completed = st.state === "complete" && (!before || before.state !== "complete");
  if (stageDone(st, "thumbnail") && !stageDone(before, "thumbnail")) loadStoryboard();
  if ((!state.media.poster || !state.media.ladder) && (segmentDone(st, 0, "thumbnail") && !segmentDone(before, 0, "thumbnail") ||
      stageDone(st, "split") && !stageDone(before, "split"))) loadPoster();
  if (completed || (before && before.state !== st.state) || stageDone(st, "aitag") && !stageDone(before, "aitag")) loadTags();
}

function stageDone(st, name) {
  return !!(st && st.stages && st.stages[name] && st.stages[name].state === "done");
}

function segmentDone(st, index, name) {
  const seg = st && st.segments && st.segments.find((s) => s.index === index);
  return !!(seg && seg.stages && seg.stages[name] && seg.stages[name].state === "done");
}

// loadPoster asks again for the media URLs once the poster may exist:
// they name it only when it does (and the ladder once split chose it).
async function loadPoster() {
  const id = state.selected;
  const media = await api("/ui/api/media/" + encodeURIComponent(id));
  if (id !== state.selected) return;
  if (media.ladder) {
    state.media.ladder = media.ladder;
    $("#asset-ladder").textContent = "ladder " + media.ladder;
  }
  if (!media.poster) return;
  state.media.poster = media.poster;
  video.poster = media.poster;
}

function stopPlayer() {
  if (state.hls) { state.hls.destroy(); state.hls = null; }
  if (state.whep) {
    const { pc, session } = state.whep;
    state.whep = null;
    // The relay hears of the end first: closing the connection before
    // the DELETE lands makes the relay end the session on its own, and
    // the DELETE then finds none (404).
    if (session) fetch(session, { method: "DELETE" }).catch(() => {}).finally(() => pc.close());
    else pc.close();
    video.srcObject = null;
  }
  video.removeAttribute("src");
  video.load();
  $("#levels").replaceChildren(el("option", { value: "-1" }, "Auto"));
  $("#captions").replaceChildren(el("option", { value: "-1" }, "Off"));
}

function startPlayer() {
  const url = state.media.master;
  if (state.media.poster) video.poster = state.media.poster;
  if (window.Hls && Hls.isSupported()) {
    // A file still being transcoded has EVENT playlists, which hls.js
    // would start near their end, as live: a file starts at its start.
    const live = /^(private_)?live-/.test(state.selected || "");
    const config = { enableWebVTT: true, renderTextTracksNatively: true, subtitleDisplay: true,
      startPosition: state.pendingSeek !== null ? state.pendingSeek : (live ? -1 : 0) };
    // An asset played through the route may be cbcs-encrypted: its key
    // comes, for EME Clear Key, from the license URL beside the master
    // the route signed. Clear and AES-128 assets never ask for it.
    if (url.includes("/play/")) {
      config.emeEnabled = true;
      config.drmSystems = { "org.w3.clearkey": { licenseUrl: url.replace(/master\.m3u8$/, "license") } };
    }
    const hls = new Hls(config);
    state.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
      $("#levels").replaceChildren(el("option", { value: "-1" }, "Auto"),
        ...data.levels.map((l, i) => el("option", { value: String(i) }, `${l.height}p ${Math.round(l.bitrate / 1000)} kb/s`)));
      if (state.pendingSeek !== null) { video.currentTime = state.pendingSeek; state.pendingSeek = null; }
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_, data) => {
      $("#captions").replaceChildren(el("option", { value: "-1" }, "Off"),
        ...data.subtitleTracks.map((t, i) => el("option", { value: String(i) }, t.name || t.lang || `track ${i + 1}`)));
      if (data.subtitleTracks.length) { hls.subtitleTrack = 0; $("#captions").value = "0"; }
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      $("#asset-error").textContent = `player: ${data.type} ${data.details}`;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
      else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url; // Safari plays HLS itself
  } else {
    $("#asset-error").textContent = "This browser cannot play HLS (hls.js missing: run scripts/setup.sh).";
  }
}

// startWHEP plays the selected live stream over WebRTC: one POST of a
// receive-only offer (every candidate in it) to its WHEP endpoint, the
// answer's tracks into the video element. A stream no longer live (404)
// falls back to HLS.
async function startWHEP() {
  stopPlayer();
  const pc = new RTCPeerConnection();
  const whep = { pc, session: null };
  state.whep = whep;
  const receiver = pc.addTransceiver("video", { direction: "recvonly" });
  // #codec=vp8 (read once, at load) offers VP8 alone, as a browser without
  // H.264 does: the relay then sends its one VP8 encode of the stream.
  if (whepCodec && receiver.setCodecPreferences) {
    const only = RTCRtpReceiver.getCapabilities("video").codecs.filter((c) => c.mimeType.toLowerCase() === `video/${whepCodec}`);
    if (only.length) receiver.setCodecPreferences(only);
  }
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.addEventListener("track", (e) => {
    stream.addTrack(e.track);
    video.srcObject = stream;
    video.play().catch(() => {}); // muted autoplay or a later click
  });
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
      setTimeout(resolve, 3000);
    });
    const endpoint = new URL(state.media.whep, location.origin).href;
    const headers = { "Content-Type": "application/sdp" };
    if (state.media.whepToken) headers.Authorization = `Bearer ${state.media.whepToken}`; // a private stream's
    const resp = await fetch(endpoint, { method: "POST", body: pc.localDescription.sdp, headers });
    if (resp.status !== 201) throw Object.assign(new Error(`WebRTC: ${resp.status} ${(await resp.text()).trim()}`), { status: resp.status });
    whep.session = new URL(resp.headers.get("Location"), endpoint).href;
    if (state.whep !== whep) { fetch(whep.session, { method: "DELETE" }).catch(() => {}); return; }
    await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  } catch (err) {
    if (state.whep !== whep) return;
    stopPlayer();
    $("#whep").checked = false;
    if (err.status !== 404) $("#asset-error").textContent = err.message;
    refreshStatus();
  }
}

$("#whep").addEventListener("change", () => {
  if ($("#whep").checked) startWHEP();
  else { stopPlayer(); startPlayer(); video.play().catch(() => {}); } // the live master is there by now; playing goes on
});

// The storyboard is WebVTT whose cues name a region of the sprite (#xywh).
function parseTime(t) {
  const p = t.trim().split(":").map(Number);
  return p.reduce((acc, v) => acc * 60 + v, 0);
}

async function loadStoryboard() {
  try {
    const resp = await fetch(state.media.storyboard, { cache: "no-cache" });
    if (!resp.ok) return;
    const text = await resp.text();
    const base = state.media.storyboard.replace(/[^/]*$/, "");
    const cues = [];
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const m = lines[i].match(/^([\d:.]+)\s+-->\s+([\d:.]+)/);
      if (!m || i + 1 >= lines.length) continue;
      const ref = lines[i + 1].trim();
      const [file, frag] = ref.split("#xywh=");
      if (!frag) continue;
      const [x, y, w, h] = frag.split(",").map(Number);
      cues.push({ start: parseTime(m[1]), end: parseTime(m[2]), url: new URL(file, base).href, x, y, w, h });
    }
    state.cues = cues;
  } catch (e) { /* no storyboard yet: no previews */ }
}

async function loadTags() {
  const id = state.selected;
  let detail;
  try { detail = await api("/ui/api/tags/" + encodeURIComponent(id)); } catch (e) { return; }
  if (id !== state.selected) return;
  state.tags = detail.tags || [];
  state.duration = detail.duration || video.duration || 0;
  drawTags();
}

function duration() {
  return (isFinite(video.duration) && video.duration > 0) ? video.duration : (state.duration || 0);
}

function drawTags() {
  const d = duration();
  if (!d) return;
  $("#tags").replaceChildren(...state.tags.filter((t) => t.kind !== "loudness").map((t) => el("div", {
    class: `tag ${t.kind}`, title: `${t.kind}: ${t.label} (${fmtTime(t.start)}–${fmtTime(t.end)})`,
    style: { left: `${(100 * t.start) / d}%`, width: `${(100 * Math.max(t.end - t.start, 0)) / d}%` },
    onclick: () => seek(t.start),
  })));
}

function seek(t) {
  if (state.hls && state.hls.levels && state.hls.levels.length) video.currentTime = t;
  else if (video.src && video.readyState > 0) video.currentTime = t;
  else state.pendingSeek = t;
  $("#scrub-played").style.width = `${(100 * t) / (duration() || 1)}%`;
}

function setupTimeline() {
  const scrub = $("#scrub");
  const preview = $("#preview");
  const img = $("#preview-img");
  const at = (e) => {
    const r = scrub.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), r];
  };
  scrub.addEventListener("mousemove", (e) => {
    const [f, r] = at(e);
    const t = f * duration();
    const cue = state.cues.find((c) => t >= c.start && t < c.end) || state.cues[state.cues.length - 1];
    if (!cue) { preview.hidden = true; return; }
    preview.hidden = false;
    preview.style.left = `${f * r.width}px`;
    Object.assign(img.style, { width: `${cue.w}px`, height: `${cue.h}px`, backgroundImage: `url("${cue.url}")`, backgroundPosition: `-${cue.x}px -${cue.y}px` });
    $("#preview-time").textContent = fmtTime(t);
  });
  scrub.addEventListener("mouseleave", () => { preview.hidden = true; });
  scrub.addEventListener("click", (e) => seek(at(e)[0] * duration()));
  video.addEventListener("timeupdate", () => {
    $("#scrub-played").style.width = `${(100 * video.currentTime) / (duration() || 1)}%`;
  });
  video.addEventListener("loadedmetadata", drawTags);
  $("#levels").addEventListener("change", (e) => { if (state.hls) state.hls.currentLevel = Number(e.target.value); });
  $("#captions").addEventListener("change", (e) => { if (state.hls) state.hls.subtitleTrack = Number(e.target.value); });
}

// ---- search: a hit opens its asset and seeks to the moment ----

async function search(q) {
  const ol = $("#hits");
  let hits = [];
  try { hits = await api("/api/search?q=" + encodeURIComponent(q)); } catch (e) {
    ol.hidden = false;
    ol.replaceChildren(el("li", { class: "error" }, e.message));
    return;
  }
  ol.hidden = false;
  ol.replaceChildren(...(hits.length ? hits.map((h) => el("li", { class: "hit", dataset: { asset: h.asset, start: String(h.start) },
    onclick: () => openHit(h) }, el("b", {}, `${h.kind} ${fmtTime(h.start)}`), " ", h.asset, " — ", h.snippet.replace(/<[^>]*>/g, "")))
    : [el("li", { class: "muted" }, `Nothing found for “${q}”.`)]));
}

async function openHit(h) {
  if (state.selected !== h.asset) {
    state.pendingSeek = h.start;
    await select(h.asset);
  }
  seek(h.start);
}

// ---- start ----

setupDrop();
setupTimeline();
$("#search-form").addEventListener("submit", (e) => { e.preventDefault(); const q = $("#search").value.trim(); if (q) search(q); });
$("#replay-all").addEventListener("click", () => replay(""));
const fromHash = new URLSearchParams(location.hash.slice(1)).get("asset");
whepCodec = new URLSearchParams(location.hash.slice(1)).get("codec")?.toLowerCase() || "";
if (fromHash) select(fromHash);
refreshAssets();
refreshDeadLetters();
setInterval(refreshAssets, 3000);
setInterval(refreshDeadLetters, 5000);
setInterval(refreshStatus, 1000);
