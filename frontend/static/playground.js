// vTTS playground: plain JavaScript, no build step, no dependency, talks only to its own origin.
//
// Layout of this file, so the pieces still to come slot in:
//  - api(): every request; asks for an API key once when the server answers 401 (kept in sessionStorage).
//  - PcmPlayer: plays 24 kHz 16-bit PCM chunks through the Web Audio API as they arrive, and maps the audio
//    clock back to the request's audio time (for word highlighting). Any transport feeds it.
//  - transports: how audio reaches the player. `sse` (POST /v1/audio/speech, stream_format "sse", pcm deltas)
//    is the one used today; a type-as-you-go mode over the WebSocket route registers another one here.
//  - voiceSources: where the voice picker's entries come from. Today /v1/audio/voices; custom voices (record
//    or upload a consent and a sample) add a source and a small form of their own.
//  - live view: /metrics (parsed here) and /admin/models, polled every few seconds, drawn as SVG plots.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY_STORAGE = "vtts.apiKey";
  const PCM_RATE = 24000;
  const POLL_MS = 3000;
  const HISTORY = 60;

  /** What the page did, for people debugging it and for the browser tests. */
  const stats = {
    state: "idle", requests: 0, chunks: 0, samples: 0, peak: 0, analyserPeak: 0, ttfaMs: null, rtf: null,
    audioSeconds: 0, usage: null, words: 0, lit: 0, error: null, polls: 0,
  };

  // ---------------------------------------------------------------- API client and key

  class ApiError extends Error {
    constructor(status, message, code) { super(message); this.status = status; this.code = code || null; }
  }

  /** The server's own message for a failed response (OpenAI's error shape), else the status line. */
  async function errorFrom(resp) {
    let message = `HTTP ${resp.status} ${resp.statusText}`.trim();
    let code = null;
    try {
      const body = await resp.json();
      if (body && body.error && body.error.message) { message = body.error.message; code = body.error.code; }
    } catch (_) { /* not JSON: keep the status line */ }
    return new ApiError(resp.status, message, code);
  }

  let keyWaiter = null;
  /** Ask for the API key once (one dialog even if several requests got 401 at the same time). */
  function askKey(reason) {
    if (keyWaiter) return keyWaiter;
    const dialog = $("key-dialog");
    keyWaiter = new Promise((resolve) => {
      const form = $("key-form");
      const input = $("key-input");
      input.value = "";
      $("key-reason").textContent = reason || "";
      $("key-reason").hidden = !reason;
      const finish = (value) => {
        form.removeEventListener("submit", onSubmit);
        $("key-cancel").removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        keyWaiter = null;
        resolve(value);
      };
      const onSubmit = (ev) => {
        ev.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        sessionStorage.setItem(KEY_STORAGE, key);
        finish(key);
      };
      const onCancel = (ev) => { ev.preventDefault(); finish(null); };
      form.addEventListener("submit", onSubmit);
      $("key-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      input.focus();
    });
    return keyWaiter;
  }

  /** fetch() with the stored key; a 401 from a /v1 route asks for the key once and retries. */
  async function api(path, init = {}) {
    for (let attempt = 0; ; attempt++) {
      const headers = new Headers(init.headers || {});
      const key = sessionStorage.getItem(KEY_STORAGE);
      if (key) headers.set("Authorization", `Bearer ${key}`);
      const resp = await fetch(path, { ...init, headers });
      if (resp.status !== 401 || !path.startsWith("/v1") || attempt > 0) return resp;
      const err = await errorFrom(resp);
      if ((await askKey(err.message)) === null) throw err;
    }
  }

  async function getJSON(path) {
    const resp = await api(path);
    if (!resp.ok) throw await errorFrom(resp);
    return resp.json();
  }

  // ---------------------------------------------------------------- messages

  function showError(err) {
    const box = $("error");
    const message = err instanceof Error ? err.message : String(err);
    stats.error = message;
    box.textContent = message;
    box.hidden = false;
  }
  function clearError() { $("error").hidden = true; $("error").textContent = ""; stats.error = null; }
  function setStatus(text) { $("status").textContent = text; }

  // ---------------------------------------------------------------- audio

  let audioContext = null;
  let analyser = null;
  /** The page's AudioContext, created and resumed inside a user gesture (autoplay rules). */
  async function audio() {
    if (!audioContext) {
      audioContext = new AudioContext();
      analyser = audioContext.createAnalyser();
      analyser.fftSize = 2048;
      analyser.connect(audioContext.destination);
    }
    if (audioContext.state !== "running") await audioContext.resume();
    return audioContext;
  }

  /** Plays 16-bit PCM chunks back to back as they arrive; knows which audio time is playing now. */
  class PcmPlayer {
    constructor(ctx, rate) {
      this.ctx = ctx; this.rate = rate; this.nextTime = 0; this.samples = 0;
      this.sources = []; this.segments = []; this.carry = null; this.stopped = false;
    }
    /** Queue little-endian int16 bytes (a chunk may end inside a sample: the odd byte waits). */
    push(bytes) {
      if (this.stopped) return;
      if (this.carry !== null) {
        const joined = new Uint8Array(bytes.length + 1);
        joined[0] = this.carry; joined.set(bytes, 1); bytes = joined; this.carry = null;
      }
      if (bytes.length % 2) { this.carry = bytes[bytes.length - 1]; bytes = bytes.subarray(0, bytes.length - 1); }
      const n = bytes.length / 2;
      if (!n) return;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      const buffer = this.ctx.createBuffer(1, n, this.rate);
      const data = buffer.getChannelData(0);
      let peak = stats.peak;
      for (let i = 0; i < n; i++) {
        const v = view.getInt16(2 * i, true) / 32768;
        data[i] = v;
        const a = v < 0 ? -v : v;
        if (a > peak) peak = a;
      }
      stats.peak = peak;
      const src = this.ctx.createBufferSource();
      src.buffer = buffer;
      src.connect(analyser);
      const start = Math.max(this.nextTime, this.ctx.currentTime + 0.05);
      src.start(start);
      this.segments.push({ at: start, offset: this.samples / this.rate, duration: n / this.rate });
      this.sources.push(src);
      src.onended = () => { this.sources = this.sources.filter((s) => s !== src); };
      this.nextTime = start + n / this.rate;
      this.samples += n;
      stats.chunks += 1;
      stats.samples += n;
    }
    /** The request's audio time (seconds) playing now, or -1 before the first sample. */
    position() {
      const t = this.ctx.currentTime;
      let pos = -1;
      for (const s of this.segments) {
        if (t < s.at) break;
        pos = s.offset + Math.min(t - s.at, s.duration);
      }
      return pos;
    }
    playing() { return !this.stopped && this.ctx.currentTime < this.nextTime; }
    stop() {
      this.stopped = true;
      for (const s of this.sources) { try { s.stop(); } catch (_) { /* not started yet */ } }
      this.sources = [];
    }
  }

  // ---------------------------------------------------------------- transports

  /** Split an SSE body into its `data:` payloads, parsed as JSON, as they arrive. */
  async function readSSE(body, onEvent) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart())
          .join("\n");
        if (data) onEvent(JSON.parse(data));
      }
    }
  }

  function base64Bytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  const transports = {
    /** One POST, streamed as SSE: pcm deltas play as they come; the done event carries usage, and
     * timestamps events (with extra.timestamps, on engines that have them) the words' times. */
    async sse(run, request) {
      const resp = await api("/v1/audio/speech", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...request, response_format: "pcm", stream_format: "sse" }),
        signal: run.controller.signal,
      });
      if (!resp.ok) throw await errorFrom(resp);
      await readSSE(resp.body, (event) => {
        if (event.type === "speech.audio.delta") {
          const bytes = base64Bytes(event.audio);
          if (run.firstAt === null && bytes.length) {
            run.firstAt = performance.now();
            stats.ttfaMs = run.firstAt - run.t0;
            setStatus("Playing…");
          }
          run.pcm.push(bytes);
          run.player.push(bytes);
        } else if (event.type === "speech.audio.timestamps") {
          addWords(run, event.words || []);
        } else if (event.type === "speech.audio.done") {
          run.usage = event.usage || null;
          run.doneAt = performance.now();
        } else if (event.type === "error") {
          throw new ApiError(0, (event.error && event.error.message) || "the stream failed");
        }
      });
      if (run.doneAt === null) throw new Error("The stream ended before its end event: the server cut it.");
    },
  };
  let transport = "sse";

  // ---------------------------------------------------------------- speak, stop, download

  let current = null; // the run playing or streaming now
  let last = null;    // the last run, for Download

  function buildRequest() {
    const model = $("model").value;
    const voice = $("voice").value;
    if (!model || !voice) throw new Error("No model or voice to pick: the server lists none yet.");
    const input = $("text").value;
    if (!input.trim()) throw new Error("Type something to speak first.");
    let extra = {};
    const rawExtra = $("extra").value.trim();
    if (rawExtra) {
      try { extra = JSON.parse(rawExtra); } catch (e) { throw new Error(`Engine knobs: not valid JSON (${e.message})`); }
      if (extra === null || typeof extra !== "object" || Array.isArray(extra)) {
        throw new Error("Engine knobs: must be a JSON object, like {\"locale\": \"en-GB\"}");
      }
    }
    if ($("timestamps").checked && !("timestamps" in extra)) extra.timestamps = true;
    if (!$("normalize").checked && !("normalize" in extra)) extra.normalize = false;
    const request = { model, voice, input, speed: Number($("speed").value) };
    const language = $("language").value.trim();
    if (language) request.language = language;
    if (Object.keys(extra).length) request.extra = extra;
    return request;
  }

  function setBusy(busy) {
    $("stop").disabled = !busy;
  }

  async function speak() {
    clearError();
    let request;
    try { request = buildRequest(); } catch (e) { stats.state = "error"; showError(e); return; }
    stats.state = "starting"; // set before the first await, so a caller polling the state sees this request
    if (current) stop(true);
    const run = {
      request, controller: new AbortController(), t0: performance.now(), firstAt: null, doneAt: null,
      usage: null, pcm: [], words: [], player: null, stopped: false, replaced: false,
    };
    current = run; // before the first await: a second Speak meanwhile replaces this one
    last = run;
    try {
      run.player = new PcmPlayer(await audio(), PCM_RATE);
    } catch (e) {
      if (current === run) {
        current = null;
        stats.state = "error";
        showError(new Error(`Audio cannot play here: ${e.message}`));
      }
      return;
    }
    if (run.stopped) return;
    Object.assign(stats, { state: "streaming", chunks: 0, samples: 0, peak: 0, analyserPeak: 0, ttfaMs: null,
                           rtf: null, audioSeconds: 0, usage: null, words: 0, lit: 0 });
    stats.requests += 1;
    $("timing").hidden = true;
    $("download").disabled = true;
    resetWords(request.extra && request.extra.timestamps);
    setBusy(true);
    setStatus("Waiting for the first audio…");
    highlightLoop(run);
    try {
      await transports[transport](run, request);
      stats.state = "done";
      showTiming(run);
      setStatus("Playing the rest…");
      whenPlayed(run);
    } catch (e) {
      if (run.replaced) return; // a newer Speak took over: its run owns the page now
      if (run.stopped || e.name === "AbortError") {
        stats.state = "stopped";
        setStatus("Stopped.");
      } else {
        stats.state = "error";
        run.player.stop();
        showError(e);
        setStatus("");
        if (current === run) { current = null; setBusy(false); }
      }
    } finally {
      if (last === run) $("download").disabled = !run.pcm.length;
    }
  }

  /** Keep Stop enabled until the last scheduled sample has played. */
  function whenPlayed(run) {
    const check = () => {
      if (current !== run) return;
      if (run.player.playing()) { setTimeout(check, 200); return; }
      current = null;
      setBusy(false);
      setStatus("Done.");
    };
    check();
  }

  /** Stop: abort the request (the server cancels it in the worker) and silence what was queued. */
  function stop(quiet = false) {
    const run = current;
    if (!run) return;
    run.stopped = true;
    run.replaced = quiet;
    run.controller.abort();
    if (run.player) run.player.stop();
    current = null;
    setBusy(false);
    if (!quiet) { stats.state = "stopped"; setStatus("Stopped."); }
  }

  function showTiming(run) {
    const seconds = run.player.samples / PCM_RATE;
    const took = (run.doneAt - run.t0) / 1000;
    stats.audioSeconds = seconds;
    stats.rtf = seconds > 0 ? took / seconds : null;
    stats.usage = run.usage;
    const parts = [];
    if (run.firstAt !== null) parts.push(`First audio after ${Math.round(run.firstAt - run.t0)} ms`);
    parts.push(`${seconds.toFixed(2)} s of audio in ${took.toFixed(2)} s`
      + (stats.rtf !== null ? ` (real-time factor ${stats.rtf.toFixed(3)})` : ""));
    if (run.usage) {
      parts.push(`usage: ${run.usage.input_tokens} input + ${run.usage.output_tokens} output = `
        + `${run.usage.total_tokens} tokens`);
    }
    $("timing").textContent = parts.join(" · ");
    $("timing").hidden = false;
  }

  /** A WAV file (16-bit mono) around PCM bytes. */
  function wavBlob(chunks, rate) {
    const size = chunks.reduce((n, c) => n + c.length, 0) & ~1;
    const header = new DataView(new ArrayBuffer(44));
    const text = (at, s) => { for (let i = 0; i < s.length; i++) header.setUint8(at + i, s.charCodeAt(i)); };
    text(0, "RIFF"); header.setUint32(4, 36 + size, true); text(8, "WAVE");
    text(12, "fmt "); header.setUint32(16, 16, true); header.setUint16(20, 1, true); header.setUint16(22, 1, true);
    header.setUint32(24, rate, true); header.setUint32(28, rate * 2, true); header.setUint16(32, 2, true);
    header.setUint16(34, 16, true); text(36, "data"); header.setUint32(40, size, true);
    return new Blob([header.buffer, ...chunks], { type: "audio/wav" });
  }

  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url; a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  /** wav and pcm: the very audio that played, encoded here. Other formats: the server encodes the same
   * request again (a second synthesis; sampling engines such as Piper differ slightly from take to take). */
  async function download() {
    if (!last) return;
    clearError();
    const format = $("format").value;
    if (format === "wav") { save(wavBlob(last.pcm, PCM_RATE), "speech.wav"); return; }
    if (format === "pcm") { save(new Blob(last.pcm, { type: "application/octet-stream" }), "speech.pcm"); return; }
    setStatus(`Encoding ${format} on the server…`);
    try {
      const resp = await api("/v1/audio/speech", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...last.request, response_format: format, stream_format: "audio" }),
      });
      if (!resp.ok) throw await errorFrom(resp);
      save(await resp.blob(), `speech.${format}`);
      setStatus(`Saved speech.${format}.`);
    } catch (e) { showError(e); setStatus(""); }
  }

  // ---------------------------------------------------------------- word highlighting

  function resetWords(wanted) {
    const box = $("words");
    box.textContent = "";
    box.hidden = true;
    box.dataset.wanted = wanted ? "1" : "";
  }

  function addWords(run, words) {
    const box = $("words");
    for (const w of words) {
      const span = document.createElement("span");
      span.textContent = w.word;
      box.append(span, " ");
      run.words.push({ start: Number(w.start), end: Number(w.end), span });
    }
    stats.words = run.words.length;
    box.hidden = run.words.length === 0;
  }

  function highlightLoop(run) {
    let lit = null;
    const tick = () => {
      if (run.player.stopped && current !== run) { if (lit) lit.classList.remove("now"); return; }
      if (analyser) {
        const data = new Float32Array(analyser.fftSize);
        analyser.getFloatTimeDomainData(data);
        for (const v of data) { const a = Math.abs(v); if (a > stats.analyserPeak) stats.analyserPeak = a; }
      }
      const pos = run.player.position();
      let now = null;
      for (const w of run.words) { if (w.start <= pos && pos < w.end) { now = w.span; break; } }
      if (now !== lit) {
        if (lit) lit.classList.remove("now");
        if (now) { now.classList.add("now"); stats.lit += 1; }
        lit = now;
      }
      if (current === run || run.player.playing()) setTimeout(tick, 50);
      else if (lit) lit.classList.remove("now");
    };
    tick();
  }

  // ---------------------------------------------------------------- what will it read

  async function normalize() {
    clearError();
    const input = $("text").value;
    if (!input.trim()) { showError(new Error("Type something first.")); return; }
    const body = { input, model: $("model").value || undefined };
    const language = $("language").value.trim();
    if (language) body.language = language;
    if (!$("normalize").checked) body.normalize = false;
    try {
      const extra = JSON.parse($("extra").value.trim() || "{}");
      for (const k of ["locale", "lexicon", "normalize"]) if (extra && extra[k] !== undefined) body[k] = extra[k];
    } catch (_) { /* Speak reports bad JSON */ }
    try {
      const resp = await api("/v1/text/normalize", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (!resp.ok) throw await errorFrom(resp);
      const out = await resp.json();
      $("normalized-input").textContent = input;
      $("normalized-output").textContent = out.text;
      $("normalized-language").textContent = out.language ? `(${out.language})` : "";
      $("normalized-card").hidden = false;
    } catch (e) { showError(e); }
  }

  // ---------------------------------------------------------------- pickers

  let voicesByModel = new Map();
  let aliases = new Map(); // model id -> the other names that route to it (tts-1, ...)
  /** Where the voice picker's entries come from; custom voices will add a source of their own. */
  const voiceSources = [
    async () => (await getJSON("/v1/audio/voices")).data,
  ];

  async function loadPickers() {
    const [models, ...lists] = await Promise.all([getJSON("/v1/models"), ...voiceSources.map((s) => s())]);
    voicesByModel = new Map();
    for (const v of lists.flat()) {
      if (!voicesByModel.has(v.model)) voicesByModel.set(v.model, []);
      voicesByModel.get(v.model).push(v);
    }
    aliases = new Map();
    for (const m of models.data) {
      if (m.root && m.root !== m.id) {
        if (!aliases.has(m.root)) aliases.set(m.root, []);
        aliases.get(m.root).push(m.id);
      }
    }
    const select = $("model");
    const keep = select.value;
    select.textContent = "";
    for (const id of voicesByModel.keys()) {
      select.append(new Option(id, id));
    }
    if (keep && voicesByModel.has(keep)) select.value = keep;
    fillVoices();
    if (!voicesByModel.size) setStatus("The server lists no voices yet (models still loading?).");
  }

  function fillVoices() {
    const select = $("voice");
    const keep = select.value;
    select.textContent = "";
    for (const v of voicesByModel.get($("model").value) || []) {
      const bits = [v.language, v.sample_rate ? `${v.sample_rate} Hz` : null].filter(Boolean).join(", ");
      select.append(new Option(bits ? `${v.id} — ${bits}` : v.id, v.id));
    }
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
    describeVoice();
  }

  function describeVoice() {
    const v = (voicesByModel.get($("model").value) || []).find((x) => x.id === $("voice").value);
    const names = aliases.get($("model").value);
    $("voice-info").textContent = v
      ? [`language ${v.language || "?"}`, `${v.sample_rate || "?"} Hz (played as 24 kHz PCM)`, v.description,
        names ? `model also named ${names.join(", ")}` : null].filter(Boolean).join(" · ")
      : "";
  }

  // ---------------------------------------------------------------- character count

  let maxChars = 4096;
  function count() {
    const n = [...$("text").value].length; // code points, as the server counts
    const el = $("count");
    el.textContent = `${n} / ${maxChars} characters`;
    el.classList.toggle("over", n > maxChars);
    $("text").setAttribute("aria-invalid", n > maxChars ? "true" : "false");
  }

  // ---------------------------------------------------------------- live view

  /** Prometheus text format → [{name, labels, value}] (the simple lines this server writes). */
  function parseMetrics(text) {
    const out = [];
    for (const line of text.split("\n")) {
      if (!line || line[0] === "#") continue;
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
      out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
  }

  const history = { active: [], queue: [] };
  /** A sparkline of the last HISTORY polls, scaled to its maximum (at least 1), with a baseline. */
  function plot(id, values) {
    const svg = $(id);
    const max = Math.max(1, ...values);
    const step = 240 / (HISTORY - 1);
    const offset = HISTORY - values.length;
    const y = (v) => (56 - (v / max) * 48).toFixed(1);
    const points = values.map((v, i) => `${((offset + i) * step).toFixed(1)},${y(v)}`);
    if (!svg.firstChild) {
      const make = (tag, cls) => {
        const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
        el.setAttribute("class", cls);
        svg.append(el);
        return el;
      };
      make("polyline", "baseline").setAttribute("points", "0,56 240,56");
      make("polyline", "series");
    }
    svg.querySelector(".series").setAttribute("points", points.join(" "));
    $(`${id}-max`).textContent = `(scale 0–${max})`;
    svg.setAttribute("aria-label", `${svg.getAttribute("aria-label").split(":")[0]}: now ${values.at(-1)}, max ${max}`);
  }

  let adminOpen = true;
  async function poll() {
    if (document.hidden) return;
    stats.polls += 1;
    const perModel = new Map();
    const row = (id) => { if (!perModel.has(id)) perModel.set(id, { state: "–", replicas: "–", queue: 0, active: 0 }); return perModel.get(id); };
    try {
      const resp = await fetch("/metrics");
      if (!resp.ok) throw await errorFrom(resp);
      let active = 0; let queue = 0;
      for (const s of parseMetrics(await resp.text())) {
        if (s.name === "vtts_active_streams") { active += s.value; row(s.labels.model).active += s.value; }
        if (s.name === "vtts_worker_queue_depth") { queue += s.value; row(s.labels.model).queue += s.value; }
      }
      for (const [key, v] of [["active", active], ["queue", queue]]) {
        history[key].push(v);
        if (history[key].length > HISTORY) history[key].shift();
      }
      $("now-active").textContent = String(active);
      $("now-queue").textContent = String(queue);
      plot("plot-active", history.active);
      plot("plot-queue", history.queue);
    } catch (e) {
      $("live-note").textContent = `Metrics unavailable: ${e.message}`;
    }
    if (adminOpen) {
      try {
        const resp = await api("/admin/models");
        if (resp.status === 401 || resp.status === 403) {
          adminOpen = false; // a key or a loopback client is needed: the answer will not change
          $("live-note").textContent = `Model states need admin access: ${(await errorFrom(resp)).message}`;
        } else if (resp.ok) {
          for (const m of (await resp.json()).data) {
            const r = row(m.id);
            r.state = m.state;
            const replicas = m.replicas || [];
            r.replicas = `${replicas.filter((x) => x.role === "serving").length || replicas.length}`;
          }
        }
      } catch (_) { /* the next poll tries again */ }
    }
    const body = $("models-table").tBodies[0];
    body.textContent = "";
    for (const [id, r] of [...perModel].sort()) {
      if (!id) continue;
      const tr = body.insertRow();
      tr.insertCell().textContent = id;
      const state = tr.insertCell();
      state.textContent = r.state;
      state.className = `state-${r.state}`;
      tr.insertCell().textContent = r.replicas;
      tr.insertCell().textContent = String(r.queue);
    }
  }

  // ---------------------------------------------------------------- wiring

  async function start() {
    $("speak").addEventListener("click", speak);
    $("stop").addEventListener("click", () => stop());
    $("download").addEventListener("click", download);
    $("normalize-button").addEventListener("click", normalize);
    $("model").addEventListener("change", fillVoices);
    $("voice").addEventListener("change", describeVoice);
    $("text").addEventListener("input", count);
    $("speed").addEventListener("input", () => { $("speed-value").textContent = Number($("speed").value).toFixed(2); });
    $("key-button").addEventListener("click", async () => {
      if ((await askKey("")) !== null) loadPickers().catch(showError);
    });
    $("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORAGE);
      $("key-input").value = "";
    });
    document.addEventListener("keydown", (ev) => {
      if ($("key-dialog").open) return;
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); speak(); }
      else if (ev.key === "Escape" && current) { ev.preventDefault(); stop(); }
    });
    try {
      const conf = await (await fetch("/playground/config.json")).json();
      maxChars = conf.max_input_chars;
      $("version").textContent = `v${conf.version}`;
    } catch (_) { /* keep the default limit */ }
    count();
    try { await loadPickers(); } catch (e) { showError(e); }
    poll();
    setInterval(poll, POLL_MS);
    stats.state = "ready";
  }

  window.vttsPlayground = {
    stats, speak, stop, transports, voiceSources, parseMetrics,
    audioTime: () => (audioContext ? audioContext.currentTime : 0),
    setTransport: (name) => { if (!transports[name]) throw new Error(`unknown transport ${name}`); transport = name; },
  };
  document.addEventListener("DOMContentLoaded", start);
})();
