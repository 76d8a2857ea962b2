// One browser call: create-call, the call socket (README "The call socket protocol"), the
// microphone through capture-worklet.js (context rate -> 16 kHz PCM16, 20 ms frames) and the
// assistant's audio through player-worklet.js (jitter buffer, flushed on interruption).
// Loaded by ui.js only when a call starts.

const FRAME_BYTES = 640; // 20 ms of 16 kHz PCM16 mono
const SILENCE = new ArrayBuffer(FRAME_BYTES);
const PLAYBACK_REPORT_MS = 250;
const CONNECT_TIMEOUT_MS = 15000;
const END_WAIT_MS = 4000;

export const TEXT = {
  mic: "Microphone access was denied. Allow the microphone for this site to talk to the assistant.",
  noMic: "No microphone is available here (a secure https page and a microphone are needed).",
  network: "Could not reach the assistant. Check your connection and try again.",
  lost: "The connection to the assistant was lost.",
  server: "The assistant had a problem and the call ended. Please try again later.",
  origin: "This website is not allowed to start calls with this assistant.",
  busy: "Too many calls were started from this network. Please wait a minute and try again.",
  expired: "The call could not connect in time. Please start it again.",
  audio: "This browser could not start audio for the call.",
};
const CLOSE_TEXT = {
  4400: TEXT.server,
  4401: TEXT.expired,
  4403: TEXT.origin,
  4404: "This call no longer exists. Please start a new one.",
  4408: TEXT.expired,
  4409: "This call is already connected or has ended.",
  1008: "The connection was closed because too many messages were sent.",
  1009: "The connection was closed because a message was too big.",
  1011: TEXT.server,
};
const END_TEXT = {
  hangup: "",
  assistant_ended: "The assistant ended the call.",
  max_duration: "The call reached its time limit.",
  silence_timeout: "The call ended after a long silence.",
  client_gone: "",
};

class CallError extends Error {}

function createCallMessage(status, body) {
  if (status === 403) return TEXT.origin;
  if (status === 404) return "This voice widget no longer exists.";
  if (status === 429) return TEXT.busy;
  if (status === 400 && body) {
    const errors = body.errors || {};
    const first = Object.values(errors).flat()[0];
    if (typeof first === "string" && first) return first;
    if (typeof body.message === "string" && body.message) return body.message;
  }
  return "The assistant could not start a call right now. Please try again later.";
}

export class Call {
  constructor({ host, widgetId, consent, ctx, ui }) {
    this.host = host;
    this.widgetId = widgetId;
    this.consent = consent;
    this.ctx = ctx;
    this.ui = ui;
    this.muted = false;
    this.done = false;
    this.ws = null;
    this.stream = null;
    this.capture = null;
    this.player = null;
    this.sink = null;
    this.timers = [];
    this.srcRate = 16000;
    this.played = 0; // source samples of assistant audio actually played
    this.playedMs = 0;
    this.sentPlayedMs = -1;
    this.peakRms = 0;
    this.started = false;
    this.endRequested = false;
  }

  async start() {
    try {
      await this._start();
    } catch (err) {
      if (!this.done) {
        if (!(err instanceof CallError) && window.console) console.error("voice widget:", err);
        this._finish("error", err instanceof CallError ? err.message : TEXT.server);
      }
    }
  }

  async _start() {
    const host = this.host;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new CallError(TEXT.noMic);
    }
    if (!this.ctx || !this.ctx.audioWorklet) throw new CallError(TEXT.audio);
    const ctx = this.ctx;
    const resumed = ctx.resume().catch(() => {});
    const worklets = Promise.all([
      ctx.audioWorklet.addModule(`${host}/static/widget/capture-worklet.js`),
      ctx.audioWorklet.addModule(`${host}/static/widget/player-worklet.js`),
    ]);
    worklets.catch(() => {});
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      const name = err && err.name;
      throw new CallError(name === "NotFoundError" || name === "OverconstrainedError" ? TEXT.noMic : TEXT.mic);
    }
    if (this.done) return this._cleanup();
    this.ui.onCallStats({ micLive: true });
    try {
      await worklets;
      await resumed;
    } catch (_) {
      throw new CallError(TEXT.audio);
    }
    this.ui.onCallStats({ audio: ctx.state });
    if (this.done) return;

    const body = { widget_id: this.widgetId };
    if (this.consent) body.consent = this.consent;
    let res;
    try {
      res = await fetch(`${host}/v1/widgets/create-call`, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (_) {
      throw new CallError(TEXT.network);
    }
    const data = await res.json().catch(() => null);
    if (!res.ok || !data || !data.gateway || !data.gateway.url) {
      throw new CallError(createCallMessage(res.status, data));
    }
    if (this.done) return;
    this.callId = data.call_id;
    this.ui.onCallStats({ callId: this.callId });
    this._setupAudio();
    this._connect(data.gateway.url);
  }

  _setupAudio() {
    const ctx = this.ctx;
    const source = ctx.createMediaStreamSource(this.stream);
    this.capture = new AudioWorkletNode(ctx, "vw-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCount: 1,
      channelCountMode: "explicit",
    });
    // The capture node writes silence; the muted path keeps it pulled by the graph.
    this.sink = ctx.createGain();
    this.sink.gain.value = 0;
    source.connect(this.capture).connect(this.sink).connect(ctx.destination);
    this.source = source;
    this.capture.port.onmessage = (ev) => this._onMicFrame(ev.data);

    this.player = new AudioWorkletNode(ctx, "vw-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.player.connect(ctx.destination);
    this.player.port.onmessage = (ev) => this._onPlayerStats(ev.data);
  }

  _connect(url) {
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (_) {
      throw new CallError(TEXT.network);
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    const timer = setTimeout(() => {
      if (!this.started && !this.done) this._finish("error", TEXT.network);
    }, CONNECT_TIMEOUT_MS);
    this.timers.push(timer);
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "hello", audio: "websocket" }));
      this.open = true;
      this.ui.onCallStats({ socket: "open" });
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (_) {
          return;
        }
        this._onEvent(msg);
      } else if (this.player && ev.data.byteLength) {
        this.player.port.postMessage(ev.data, [ev.data]);
      }
    };
    ws.onclose = (ev) => this._onClose(ev);
    ws.onerror = () => {};
    this.timers.push(setInterval(() => this._reportPlayback(false), PLAYBACK_REPORT_MS));
  }

  _send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  _onMicFrame(frame) {
    const ws = this.ws;
    if (!this.open || !ws || ws.readyState !== WebSocket.OPEN || this.endRequested) return;
    // Keep the socket from piling up if the network stalls (about 1 s of audio).
    if (ws.bufferedAmount > 50 * FRAME_BYTES) return;
    ws.send(this.muted ? SILENCE : frame);
  }

  _onPlayerStats(d) {
    if (!d) return;
    this.played = d.played;
    this.playedMs = Math.round((d.played * 1000) / this.srcRate);
    if (d.rms > this.peakRms) this.peakRms = d.rms;
    this.ui.onCallStats({ playedMs: this.playedMs, outputRms: d.rms, peakRms: this.peakRms });
    if (d.flushed) this._reportPlayback(true);
  }

  _reportPlayback(force) {
    if (!this.started) return;
    if (!force && this.playedMs === this.sentPlayedMs) return;
    this.sentPlayedMs = this.playedMs;
    this._send({ type: "playback", played_ms: this.playedMs });
  }

  _onEvent(msg) {
    switch (msg.type) {
      case "call.started":
        this.started = true;
        if (msg.sample_rate) {
          this.srcRate = msg.sample_rate;
          if (this.player) this.player.port.postMessage({ type: "rate", rate: msg.sample_rate });
        }
        if (this.ui.state === "connecting") this.ui.onCallState("listening");
        break;
      case "state":
        if (!this.endRequested && msg.state) this.ui.onCallState(msg.state);
        break;
      case "transcript":
        this.ui.onTranscript(msg.role, msg.text, !!msg.final);
        break;
      case "interruption":
        if (this.player) this.player.port.postMessage({ type: "flush" });
        break;
      case "error":
        if (window.console) console.warn("voice widget: server error", msg.stage, msg.message);
        this._finish("error", TEXT.server);
        break;
      case "call.ended":
        this.endedReason = msg.reason || "hangup";
        if (msg.reason === "error") this._finish("error", TEXT.server);
        else this._finish("ended", END_TEXT[msg.reason] || "");
        break;
      default:
        break;
    }
  }

  _onClose(ev) {
    this.ui.onCallStats({ socket: "closed", closeCode: ev.code });
    if (this.done) return;
    if (ev.code === 1000 || this.endRequested) {
      this._finish("ended", END_TEXT[this.endedReason] || "");
      return;
    }
    const fallback = ev.code >= 4000 ? TEXT.server : this.open ? TEXT.lost : TEXT.network;
    const text = CLOSE_TEXT[ev.code] || fallback;
    this._finish("error", text);
  }

  setMuted(muted) {
    this.muted = !!muted;
    this._send({ type: "mute", muted: this.muted });
  }

  /** The visitor hangs up; `now` skips waiting for the server's call.ended. */
  hangup(now) {
    if (this.done) return;
    if (now || !this.ws || this.ws.readyState !== WebSocket.OPEN) {
      this._send({ type: "end" });
      this._finish("ended", "");
      return;
    }
    if (this.endRequested) return;
    this.endRequested = true;
    this._send({ type: "end" });
    this._stopMic();
    this.timers.push(setTimeout(() => this._finish("ended", ""), END_WAIT_MS));
  }

  _stopMic() {
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    if (this.stream) this.ui.onCallStats({ micLive: false });
  }

  _finish(state, message) {
    if (this.done) return;
    this.done = true;
    this._cleanup();
    this.ui.onCallFinished(state, message);
  }

  _cleanup() {
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.timers = [];
    this._stopMic();
    for (const node of [this.source, this.capture, this.sink, this.player]) {
      try {
        if (node) node.disconnect();
      } catch (_) {
        /* already disconnected */
      }
    }
    if (this.capture) this.capture.port.onmessage = null;
    if (this.player) this.player.port.onmessage = null;
    if (this.ctx && this.ctx.state !== "closed") {
      this.ctx.close().then(() => this.ui.onCallStats({ audio: "closed" }), () => {});
    }
    const ws = this.ws;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
      ws.onclose = null;
      ws.onmessage = null;
      try {
        ws.close(1000);
      } catch (_) {
        /* closing anyway */
      }
    }
    if (ws) this.ui.onCallStats({ socket: "closed" });
  }
}
