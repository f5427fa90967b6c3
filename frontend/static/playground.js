// vTTS playground: plain JavaScript, no build step, no dependency, talks only to its own origin.
//
// Layout of this file, so the pieces still to come slot in:
//  - api(): every request; asks for an API key once when the server answers 401 (kept in sessionStorage).
//  - PcmPlayer: plays 24 kHz 16-bit PCM chunks through the Web Audio API as they arrive, and maps the audio
//    clock back to the request's audio time (for word highlighting). Any transport feeds it.
//  - transports: how one Speak's audio reaches the player: `sse` (POST /v1/audio/speech, stream_format "sse",
//    pcm deltas).
//  - type as you go: a WebSocket session (GET /v1/audio/speech/stream) fed with what is appended to the text
//    box as it is typed; its binary pcm frames go to the same PcmPlayer.
//  - voiceSources: where the voice picker's entries come from (/v1/audio/voices: the built-in voices per
//    model, then the caller's custom voices with the models that can speak them).
//  - custom voices: a consent recording and a sample, uploaded or recorded (MediaRecorder), made into a voice
//    (/v1/audio/voice_consents, /v1/audio/voices), listed and deleted.
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
    // type as you go: sessions opened, audio.start / audio.done seen, resets after an edit, characters sent
    wsSessions: 0, wsStarts: 0, wsDones: 0, wsResets: 0, wsSent: 0,
    customVoices: 0,
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

  /** The picked voice as a request names it: a custom voice as {"id": ...}, as OpenAI's SDK sends it. */
  function pickedVoice() {
    const id = $("voice").value;
    return customById.has(id) ? { id } : id;
  }

  function buildRequest() {
    const request = buildConfig();
    const input = $("text").value;
    if (!input.trim()) throw new Error("Type something to speak first.");
    return { ...request, input };
  }

  /** Everything a speech request takes from the page except its input (a WebSocket session's config). */
  function buildConfig() {
    const model = $("model").value;
    const voice = $("voice").value;
    if (!model || !voice) throw new Error("No model or voice to pick: the server lists none yet.");
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
    const request = { model, voice: pickedVoice(), speed: Number($("speed").value) };
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
    if (typing.session) typing.session.close();
    if (typing.player) typing.player.stop();
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

  // ---------------------------------------------------------------- type as you go (WebSocket)

  const WS_PATH = "/v1/audio/speech/stream";
  const SEND_DEBOUNCE_MS = 300;  // text goes out this long after the last keystroke...
  const FLUSH_PAUSE_MS = 1500;   // ...and what is pending is spoken after a pause this long
  /** A subprotocol is an HTTP token: a key with other characters goes in the query instead. */
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

  const typing = {
    on: false,
    sent: "",         // the prefix of the text box already sent (or, when turned on, already there)
    session: null,    // the open WebSocket session, if any
    player: null,     // one player for the whole mode: a new session's audio queues after the last one's
    sendTimer: null, pauseTimer: null,
  };

  /** One WebSocket session: session.config, then input.* messages (queued until the socket opens); its
   * binary frames are 24 kHz 16-bit PCM, played as they arrive. */
  class TypeSession {
    constructor(config, retried = false) {
      this.config = config;
      this.retried = retried;
      this.queue = [JSON.stringify({ type: "session.config", ...config, response_format: "pcm" })];
      this.opened = false; this.ended = false; this.finishing = false; this.flushable = false;
      this.t0 = null; this.firstAt = null; this.pcm = []; this.text = ""; this.items = new Map();
      this.connect();
    }

    connect() {
      const key = sessionStorage.getItem(KEY_STORAGE);
      let url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${WS_PATH}`;
      const protocols = ["vtts"];
      if (key && TOKEN.test(key)) protocols.push(`openai-insecure-api-key.${key}`);
      else if (key) url += `?api_key=${encodeURIComponent(key)}`;
      const ws = new WebSocket(url, protocols);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        this.opened = true;
        for (const m of this.queue) ws.send(m);
        this.queue = [];
      };
      ws.onmessage = (ev) => this.receive(ev.data);
      ws.onclose = (ev) => this.closed(ev);
      this.ws = ws;
      stats.wsSessions += 1;
    }

    send(message) {
      if (this.ended || this.finishing) return;
      if (message.type === "input.text") {
        if (this.t0 === null) this.t0 = performance.now();
        this.text += message.text;
        this.flushable = true;
        stats.wsSent += message.text.length;
      } else if (message.type === "input.flush") {
        if (!this.flushable) return; // nothing new since the last flush
        this.flushable = false;
      } else if (message.type === "input.done") {
        this.finishing = true;
      }
      const data = JSON.stringify(message);
      if (this.opened) this.ws.send(data); else this.queue.push(data);
    }

    receive(data) {
      if (this.ended) return;
      if (data instanceof ArrayBuffer) {
        const bytes = new Uint8Array(data);
        if (!bytes.length) return;
        if (this.firstAt === null) {
          this.firstAt = performance.now();
          if (this.t0 !== null) stats.ttfaMs = this.firstAt - this.t0;
        }
        this.pcm.push(bytes);
        typing.player.push(bytes);
        return;
      }
      const event = JSON.parse(data);
      if (event.type === "audio.start") {
        stats.wsStarts += 1;
        const li = document.createElement("li");
        li.textContent = event.sentence_text;
        li.className = "speaking";
        $("sentences").append(li);
        $("sentences").hidden = false;
        this.items.set(event.sentence_index, li);
        setStatus(`Speaking sentence ${event.sentence_index + 1}…`);
      } else if (event.type === "audio.done") {
        stats.wsDones += 1;
        const li = this.items.get(event.sentence_index);
        if (li) li.className = "done";
        setStatus("Listening for more text…");
      } else if (event.type === "session.done") {
        this.end();
        stats.state = "done";
        stats.usage = event.usage || null;
        this.showTiming(event);
        setStatus(typing.on ? "Session done; typing more opens a new one." : "Done.");
      } else if (event.type === "error") {
        this.end();
        const err = event.error || {};
        if (err.code === "idle_timeout") {
          setStatus("The session closed after a quiet minute; typing more opens a new one.");
          if (stats.state === "typing") stats.state = "ready";
          return;
        }
        stats.state = "error";
        showError(new ApiError(0, err.message || "the session failed", err.code));
        setStatus("");
      }
    }

    /** The socket closed: fine after session.done or an error event; before it opened, ask the server why
     * over plain HTTP (a browser hides a refused handshake's answer), which also asks for an API key. */
    async closed(ev) {
      if (this.ended) return;
      this.end();
      if (!this.opened) {
        try {
          const resp = await api(WS_PATH);
          const err = await errorFrom(resp);
          if (err.code === "websocket_required" && !this.retried && typing.session === null) {
            // the key is right now (it was just asked for): open again with what was queued
            const again = new TypeSession(this.config, true);
            again.queue = this.queue;
            Object.assign(again, { t0: this.t0, text: this.text, flushable: this.flushable });
            typing.session = again;
            return;
          }
          if (err.code !== "websocket_required") throw err;
        } catch (e) { stats.state = "error"; showError(e); return; }
        stats.state = "error";
        showError(new Error(`The WebSocket could not be opened (close code ${ev.code}).`));
        return;
      }
      stats.state = "error";
      showError(new Error(`The session's connection closed before it ended (close code ${ev.code}).`));
    }

    end() {
      if (this.ended) return;
      this.ended = true;
      if (typing.session === this) typing.session = null;
      for (const li of this.items.values()) if (li.className === "speaking") li.className = "done";
      if (this.pcm.length) {
        last = { request: { ...this.config, input: this.text }, pcm: this.pcm };
        $("download").disabled = false;
      }
      syncTypingButtons();
      if (this.finishing && typing.on) setTimeout(() => sendPending(), 0); // text typed while it finished
    }

    /** Stop: closing the socket cancels every sentence in flight on the server. */
    close() {
      if (this.ended) return;
      this.end();
      try { this.ws.close(1000); } catch (_) { /* already closing */ }
    }

    showTiming(event) {
      const seconds = this.pcm.reduce((n, c) => n + c.length, 0) / 2 / PCM_RATE;
      stats.audioSeconds = seconds;
      const parts = [`${event.total_sentences} sentence${event.total_sentences === 1 ? "" : "s"}`,
        `${seconds.toFixed(2)} s of audio`];
      if (this.firstAt !== null && this.t0 !== null) {
        parts.unshift(`First audio ${Math.round(this.firstAt - this.t0)} ms after the first text sent`);
      }
      const u = event.usage;
      if (u) parts.push(`usage: ${u.input_tokens} input + ${u.output_tokens} output = ${u.total_tokens} tokens`);
      $("timing").textContent = parts.join(" · ");
      $("timing").hidden = false;
    }
  }

  /** The open session, or a new one with the page's current settings. */
  function typingSession() {
    if (typing.session) return typing.session;
    const config = buildConfig();
    if (config.extra) delete config.extra.timestamps; // word times do not travel over this route
    if (config.extra && !Object.keys(config.extra).length) delete config.extra;
    if (!typing.player || typing.player.stopped) typing.player = new PcmPlayer(audioContext, PCM_RATE);
    typing.session = new TypeSession(config);
    stats.state = "typing";
    $("timing").hidden = true; // the last session's or Speak's line
    syncTypingButtons();
    meter();
    return typing.session;
  }

  /** Send what was appended since the last send; an edit inside the sent text restarts the session from
   * the sentence the edit is in. `flush` also asks the server to speak what it holds. */
  function sendPending(flush = false, done = false) {
    clearTimeout(typing.sendTimer);
    if (!typing.on) return;
    const text = $("text").value;
    try {
      if (!text.startsWith(typing.sent)) restartFrom(text);
      // a session that was told input.done takes no more text: what follows waits for the next session,
      // opened when this one ends (two sessions at once would interleave their audio)
      if (typing.session && typing.session.finishing) return;
      const delta = text.slice(typing.sent.length);
      if (delta) {
        clearError();
        typingSession().send({ type: "input.text", text: delta });
        typing.sent = text;
      }
      const session = typing.session;
      if (session && flush) session.send({ type: "input.flush" });
      if (session && done) { session.send({ type: "input.done" }); setStatus("Finishing…"); }
    } catch (e) { stats.state = "error"; showError(e); }
  }

  /** Where an edit at `changed` restarts: just after the last sentence end before it (or the start). */
  function sentenceStart(text, changed) {
    const ends = /[.!?。！？…]["')\]”’」』）]*\s+|\n/g;
    let start = 0;
    for (const m of text.slice(0, changed).matchAll(ends)) start = m.index + m[0].length;
    return start;
  }

  function restartFrom(text) {
    let p = 0;
    const sent = typing.sent;
    while (p < text.length && p < sent.length && text[p] === sent[p]) p++;
    if (typing.session) typing.session.close();
    typing.sent = text.slice(0, sentenceStart(text, p));
    stats.wsResets += 1;
    setStatus("Edited: restarting from the edited sentence.");
  }

  function onTypingInput() {
    if (!typing.on) return;
    clearTimeout(typing.sendTimer);
    clearTimeout(typing.pauseTimer);
    typing.sendTimer = setTimeout(() => sendPending(), SEND_DEBOUNCE_MS);
    typing.pauseTimer = setTimeout(() => sendPending(true), FLUSH_PAUSE_MS);
  }

  /** Finish (Speak's place in this mode, or Ctrl+Enter): the rest is sent, spoken, and the session ends. */
  function finishTyping() {
    clearTimeout(typing.pauseTimer);
    if (!typing.session && $("text").value === typing.sent) {
      setStatus("Nothing new to speak: type in the box.");
      return;
    }
    sendPending(false, true);
  }

  function stopTyping() {
    clearTimeout(typing.sendTimer);
    clearTimeout(typing.pauseTimer);
    if (typing.session) typing.session.close();
    if (typing.player) typing.player.stop();
    typing.sent = $("text").value; // what was typed so far stays unspoken
    $("stop").disabled = true;
    stats.state = "stopped";
    setStatus("Stopped.");
  }

  /** Stop's state while no Speak run owns it: enabled while a session is open or its audio plays. */
  function syncTypingButtons() {
    if (current) return;
    $("stop").disabled = !(typing.session || (typing.player && typing.player.playing()));
  }

  let metering = false;
  /** While the mode is on or its audio plays: the output level (for the tests) and Stop's state. */
  function meter() {
    if (metering) return;
    metering = true;
    const tick = () => {
      sampleAnalyser();
      syncTypingButtons();
      if (typing.on || typing.session || (typing.player && typing.player.playing())) setTimeout(tick, 50);
      else metering = false;
    };
    tick();
  }

  async function setTypingMode(on) {
    clearError();
    if (on) {
      if (current) stop();
      try { await audio(); } catch (e) { showError(new Error(`Audio cannot play here: ${e.message}`)); }
      typing.on = true;
      typing.sent = $("text").value;
      meter();
      $("sentences").textContent = "";
      $("speak").textContent = "Finish";
      $("keys-hint").textContent = "Enter or a pause speaks, Ctrl+Enter finishes, Esc stops";
      setStatus("Type as you go: new text is spoken as you type.");
      $("text").focus();
    } else {
      if (typing.session) sendPending(false, true); // the rest is still spoken
      typing.on = false;
      $("speak").textContent = "Speak";
      $("keys-hint").textContent = "Ctrl+Enter speaks, Esc stops";
      setStatus("");
    }
    $("type-hint").hidden = !on;
    $("normalize-button").hidden = on;
  }

  /** The model, voice or options changed: the open session ends (what was sent is still spoken) and the
   * next text opens a session with the new settings. */
  function typingSettingsChanged() {
    if (typing.on && typing.session) sendPending(false, true);
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

  /** The loudest sample reaching the output lately (the analyser sits just before the destination). */
  function sampleAnalyser() {
    if (!analyser) return;
    const data = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(data);
    for (const v of data) { const a = Math.abs(v); if (a > stats.analyserPeak) stats.analyserPeak = a; }
  }

  function highlightLoop(run) {
    let lit = null;
    const tick = () => {
      if (run.player.stopped && current !== run) { if (lit) lit.classList.remove("now"); return; }
      sampleAnalyser();
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
  let customById = new Map(); // the caller's custom voices (voice_...), whether or not a model can speak them
  /** Where the voice picker's entries come from: built-in voices carry their `model`; custom voices
   * (object "audio.voice") carry `models`, the served models that can speak them. */
  const voiceSources = [
    async () => (await getJSON("/v1/audio/voices")).data,
  ];

  async function loadPickers() {
    const [models, ...lists] = await Promise.all([getJSON("/v1/models"), ...voiceSources.map((s) => s())]);
    voicesByModel = new Map();
    customById = new Map();
    for (const v of lists.flat()) {
      const custom = v.object === "audio.voice";
      if (custom) customById.set(v.id, v);
      for (const model of custom ? (v.models || []) : [v.model]) {
        if (!voicesByModel.has(model)) voicesByModel.set(model, []);
        voicesByModel.get(model).push(v);
      }
    }
    stats.customVoices = customById.size;
    renderCustomVoices();
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
      if (customById.has(v.id)) {
        select.append(new Option(`${v.name} — custom, ${v.language || "?"}`, v.id));
        continue;
      }
      const bits = [v.language, v.sample_rate ? `${v.sample_rate} Hz` : null].filter(Boolean).join(", ");
      select.append(new Option(bits ? `${v.id} — ${bits}` : v.id, v.id));
    }
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
    describeVoice();
  }

  function describeVoice() {
    const v = (voicesByModel.get($("model").value) || []).find((x) => x.id === $("voice").value);
    const names = aliases.get($("model").value);
    if (v && customById.has(v.id)) {
      $("voice-info").textContent = [`custom voice ${v.id}`, `language ${v.language || "?"}`,
        v.duration ? `${Number(v.duration).toFixed(1)} s sample` : null,
        v.transcript ? `“${v.transcript}”` : "no transcript"].filter(Boolean).join(" · ");
      return;
    }
    $("voice-info").textContent = v
      ? [`language ${v.language || "?"}`, `${v.sample_rate || "?"} Hz (played as 24 kHz PCM)`, v.description,
        names ? `model also named ${names.join(", ")}` : null].filter(Boolean).join(" · ")
      : "";
  }

  // ---------------------------------------------------------------- custom voices

  function showVoiceError(err) {
    const message = err instanceof Error ? err.message : String(err);
    stats.error = message;
    $("cv-error").textContent = message;
    $("cv-error").hidden = false;
  }
  function clearVoiceError() { $("cv-error").hidden = true; $("cv-error").textContent = ""; }
  function voiceStatus(text) { $("cv-status").textContent = text; }

  /** The caller's custom voices, each with the models that can speak it, a Use and a Delete button. */
  function renderCustomVoices() {
    const list = $("cv-list");
    list.textContent = "";
    const cloning = new Set();
    for (const v of customById.values()) {
      for (const m of v.models || []) cloning.add(m);
      const li = document.createElement("li");
      li.dataset.id = v.id;
      const name = document.createElement("span");
      name.className = "cv-name";
      name.textContent = v.name;
      const actions = document.createElement("span");
      actions.className = "cv-actions";
      const use = document.createElement("button");
      use.type = "button";
      use.textContent = "Use";
      use.setAttribute("aria-label", `Use voice ${v.name}`);
      use.disabled = !(v.models || []).length;
      use.addEventListener("click", () => pickVoice(v));
      const del = document.createElement("button");
      del.type = "button";
      del.className = "danger";
      del.textContent = "Delete";
      del.setAttribute("aria-label", `Delete voice ${v.name}`);
      del.addEventListener("click", () => armDelete(del, v));
      actions.append(use, del);
      const meta = document.createElement("span");
      meta.className = "cv-meta";
      meta.textContent = [v.id, v.language, v.duration ? `${Number(v.duration).toFixed(1)} s` : null,
        (v.models || []).length ? `spoken by ${v.models.join(", ")}` : "no served model can speak it"]
        .filter(Boolean).join(" · ");
      li.append(name, actions, meta);
      list.append(li);
    }
    $("cv-note").textContent = customById.size
      ? ""
      : "None yet. A consent recording and a 2–30 s sample make one; models whose engine clones can speak it.";
  }

  /** Select a custom voice in the pickers, switching to a model that can speak it when needed. */
  function pickVoice(v) {
    const models = v.models || [];
    if (!models.length) return false;
    if (!models.includes($("model").value)) $("model").value = models[0];
    fillVoices();
    $("voice").value = v.id;
    describeVoice();
    return true;
  }

  /** Delete asks twice (the button turns into a confirmation for a few seconds): a voice cannot come back. */
  function armDelete(button, v) {
    if (button.dataset.armed) { deleteVoice(v); return; }
    button.dataset.armed = "1";
    button.textContent = "Really delete?";
    setTimeout(() => {
      if (!button.isConnected) return;
      delete button.dataset.armed;
      button.textContent = "Delete";
    }, 5000);
  }

  async function deleteVoice(v) {
    clearVoiceError();
    voiceStatus(`Deleting ${v.name}…`);
    try {
      let resp = await api(`/v1/audio/voices/${encodeURIComponent(v.id)}`, { method: "DELETE" });
      if (!resp.ok) throw await errorFrom(resp);
      let note = "";
      if (v.consent) {
        // its consent too, unless other voices still use it (a 409 naming them: then it stays)
        resp = await api(`/v1/audio/voice_consents/${encodeURIComponent(v.consent)}`, { method: "DELETE" });
        if (resp.status === 409) note = " (its consent stays: other voices use it)";
        else if (!resp.ok && resp.status !== 404) throw await errorFrom(resp);
      }
      await loadPickers();
      voiceStatus(`Deleted ${v.name}${note}.`);
      // its buttons are gone: keyboard focus goes to the next thing in the card rather than the page's top
      if (!document.activeElement || document.activeElement === document.body) {
        ($("cv-list").querySelector("button") || $("cv-new").querySelector("summary")).focus();
      }
    } catch (e) { showVoiceError(e); voiceStatus(""); }
  }

  const recordings = { consent: null, sample: null };
  let recorder = null; // the MediaRecorder running now, with its slot
  const RECORD_LIMIT_S = { consent: 60, sample: 30 };

  function canRecord() {
    return Boolean(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia
      && window.MediaRecorder);
  }

  function setRecording(slot, file) {
    recordings[slot] = file;
    const preview = $(`cv-${slot}-preview`);
    if (preview.src) URL.revokeObjectURL(preview.src);
    if (file) {
      preview.src = URL.createObjectURL(file);
      preview.hidden = false;
    } else {
      preview.removeAttribute("src");
      preview.hidden = true;
    }
  }

  /** Record (or stop recording) one slot from the microphone, as the browser's MediaRecorder encodes it
   * (webm/opus or mp4/aac: the server decodes either). */
  async function toggleRecord(slot) {
    clearVoiceError();
    const button = $(`cv-${slot}-record`);
    const info = $(`cv-${slot}-info`);
    if (recorder) {
      const was = recorder.slot;
      recorder.rec.stop();
      if (was === slot) return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      showVoiceError(new Error(`The microphone is not available: ${e.message || e.name}`));
      return;
    }
    const rec = new MediaRecorder(stream);
    const chunks = [];
    const t0 = performance.now();
    const current = { rec, slot };
    recorder = current;
    rec.addEventListener("dataavailable", (ev) => { if (ev.data.size) chunks.push(ev.data); });
    const tick = setInterval(() => {
      const s = (performance.now() - t0) / 1000;
      info.textContent = `Recording… ${s.toFixed(1)} s`;
      if (s >= RECORD_LIMIT_S[slot] && rec.state === "recording") rec.stop();
    }, 200);
    rec.addEventListener("stop", () => {
      clearInterval(tick);
      for (const t of stream.getTracks()) t.stop();
      if (recorder === current) recorder = null;
      button.textContent = "Record";
      button.classList.remove("recording");
      button.setAttribute("aria-pressed", "false");
      const type = rec.mimeType || "audio/webm";
      const ext = type.includes("mp4") ? "m4a" : type.includes("ogg") ? "ogg" : "webm";
      const file = new File(chunks, `${slot}.${ext}`, { type });
      $(`cv-${slot}-file`).value = "";
      setRecording(slot, file);
      info.textContent = `Recorded ${((performance.now() - t0) / 1000).toFixed(1)} s`;
    });
    rec.start(250);
    button.textContent = "Stop recording";
    button.classList.add("recording");
    button.setAttribute("aria-pressed", "true");
    info.textContent = "Recording… 0.0 s";
  }

  /** The chosen audio of a slot: a recording, else the uploaded file. */
  function slotFile(slot) {
    const input = $(`cv-${slot}-file`);
    return input.files && input.files.length ? input.files[0] : recordings[slot];
  }

  /** Consent first, then the voice from it; a voice the server refuses takes its new consent with it. */
  async function createVoice(ev) {
    ev.preventDefault();
    clearVoiceError();
    const name = $("cv-name").value.trim();
    const language = $("cv-language").value.trim();
    const consentFile = slotFile("consent");
    const sampleFile = slotFile("sample");
    const missing = [!name && "a name", !language && "a language", !consentFile && "a consent recording",
      !sampleFile && "a voice sample"].filter(Boolean);
    if (missing.length) { showVoiceError(new Error(`Give ${missing.join(", ")} first.`)); return; }
    if (recorder) { showVoiceError(new Error("Stop the recording first.")); return; }
    $("cv-create").disabled = true;
    voiceStatus("Uploading the consent…");
    let consent = null;
    try {
      const cform = new FormData();
      cform.append("name", name);
      cform.append("language", language);
      cform.append("recording", consentFile, consentFile.name || "consent");
      let resp = await api("/v1/audio/voice_consents", { method: "POST", body: cform });
      if (!resp.ok) throw await errorFrom(resp);
      consent = await resp.json();
      voiceStatus("Uploading the sample…");
      const vform = new FormData();
      vform.append("name", name);
      vform.append("consent", consent.id);
      vform.append("language", language);
      const transcript = $("cv-transcript").value.trim();
      if (transcript) vform.append("transcript", transcript);
      vform.append("audio_sample", sampleFile, sampleFile.name || "sample");
      resp = await api("/v1/audio/voices", { method: "POST", body: vform });
      if (!resp.ok) throw await errorFrom(resp);
      const voice = await resp.json();
      consent = null;
      await loadPickers();
      const v = customById.get(voice.id) || voice;
      const picked = pickVoice(v);
      voiceStatus(picked ? `Created ${voice.name} (${voice.id}): picked for ${$("model").value}.`
        : `Created ${voice.name} (${voice.id}); no served model can speak custom voices.`);
      $("cv-form").reset();
      setRecording("consent", null);
      setRecording("sample", null);
      $("cv-consent-info").textContent = "";
      $("cv-sample-info").textContent = "";
    } catch (e) {
      showVoiceError(e);
      voiceStatus("");
      if (consent) {
        api(`/v1/audio/voice_consents/${encodeURIComponent(consent.id)}`, { method: "DELETE" }).catch(() => {});
      }
    } finally {
      $("cv-create").disabled = false;
    }
  }

  function setupCustomVoices() {
    $("cv-form").addEventListener("submit", createVoice);
    $("cv-form").addEventListener("input", clearVoiceError); // an error about the last try goes once edited
    for (const slot of ["consent", "sample"]) {
      $(`cv-${slot}-file`).addEventListener("change", () => {
        if (slotFile(slot) !== recordings[slot]) { setRecording(slot, null); $(`cv-${slot}-info`).textContent = ""; }
      });
      const button = $(`cv-${slot}-record`);
      button.hidden = !canRecord();
      button.addEventListener("click", () => toggleRecord(slot));
    }
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
    $("speak").addEventListener("click", () => (typing.on ? finishTyping() : speak()));
    $("stop").addEventListener("click", () => (current ? stop() : stopTyping()));
    $("type-mode").addEventListener("change", () => setTypingMode($("type-mode").checked));
    $("text").addEventListener("input", onTypingInput);
    $("text").addEventListener("keydown", (ev) => {
      if (typing.on && ev.key === "Enter" && !ev.ctrlKey && !ev.metaKey && !ev.isComposing) {
        setTimeout(() => sendPending(true), 0); // after the newline is in the box
      }
    });
    for (const id of ["model", "voice", "speed", "language", "normalize", "extra"]) {
      $(id).addEventListener("change", typingSettingsChanged);
    }
    setupCustomVoices();
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
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); typing.on ? finishTyping() : speak(); }
      else if (ev.key === "Escape" && current) { ev.preventDefault(); stop(); }
      else if (ev.key === "Escape" && !$("stop").disabled) { ev.preventDefault(); stopTyping(); }
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
    stats, speak, stop, transports, voiceSources, parseMetrics, reloadVoices: () => loadPickers(),
    audioTime: () => (audioContext ? audioContext.currentTime : 0),
    setTransport: (name) => { if (!transports[name]) throw new Error(`unknown transport ${name}`); transport = name; },
  };
  document.addEventListener("DOMContentLoaded", start);
})();
