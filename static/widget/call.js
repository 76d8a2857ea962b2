// One browser call: create-call, the call socket (README "The call socket protocol") and the
// audio, over WebRTC (webrtc.js, imported only when the server offers it with `webrtc.config`
// and the browser has RTCPeerConnection) or over the socket: the microphone through
// capture-worklet.js (context rate -> 16 kHz PCM16, 20 ms frames) and the assistant's audio
// through player-worklet.js (jitter buffer, flushed on interruption). When ICE does not connect
// within ICE_TIMEOUT_MS of the offer, the call falls back to WebSocket audio.
// Loaded by ui.js only when a call starts.
//
// Debug fields (ui.debug): audio ("webrtc" | "websocket" once chosen), audioContext (the
// AudioContext's state), micStartedAt (performance.now() of the first microphone frame:
// the capture worklet's first frame on WebSocket, getUserMedia resolving on WebRTC),
// replyStarts (performance.now() at which each assistant utterance began to be heard: audible
// output after >= 300 ms of silence, mapped to the output clock), playedMs (WebSocket: ms of
// assistant audio played out; WebRTC: ms of remote audio that had energy), outputRms, peakRms,
// rtcGatherMs / rtcConnectMs (offer sent -> connected) / rtcResult.
// The <voice-widget> element may carry data-audio="websocket" (never try WebRTC) and
// data-ice-timeout-ms (how long ICE may take before falling back).
//
// Typing: sendText() sends a typed line (`text`) during a call. A text-only call (textOnly:
// offered when the microphone is refused or missing) asks for no microphone, says so in its
// hello (`text_only`) and plays the assistant's audio over the socket.

const FRAME_BYTES = 640; // 20 ms of 16 kHz PCM16 mono
const SILENCE = new ArrayBuffer(FRAME_BYTES);
const PLAYBACK_REPORT_MS = 250;
const CONNECT_TIMEOUT_MS = 15000;
const END_WAIT_MS = 4000;
const CONFIG_WAIT_MS = 3000; // webrtc.config always comes right after the server's checks
const ICE_TIMEOUT_MS = 4000; // offer sent -> connected, or WebSocket audio
const MAX_TYPED_CHARS = 1000; // calls/protocol.py MAX_TYPED_CHARS

export const TEXT = {
  mic: "Microphone access was denied. Allow the microphone for this site to talk to the assistant.",
  noMic: "No microphone is available here (a secure https page and a microphone are needed).",
  network: "Could not reach the assistant. Check your connection and try again.",
  lost: "The connection to the assistant was lost.",
  server: "The assistant had a problem and the call ended. Please try again later.",
  origin: "This website is not allowed to start calls with this assistant.",
  busy: "The assistant is busy with other calls right now. Please try again in a moment.",
  rateLimited: "Too many calls were started from this network. Please wait a minute and try again.",
  expired: "The call could not connect in time. Please start it again.",
  audio: "This browser could not start audio for the call.",
  gone: "This call no longer exists. Please start a new one.",
  taken: "This call is already connected or has ended.",
  tooBig: "The connection was closed because a message was too big.",
  tooMany: "The connection was closed because too many messages were sent.",
  noWidget: "This voice widget no longer exists.",
  noCall: "The assistant could not start a call right now. Please try again later.",
  assistantEnded: "The assistant ended the call.",
  maxDuration: "The call reached its time limit.",
  silence: "The call ended after a long silence.",
};
// The call socket's close codes (calls/protocol.py, CloseCode) and what the visitor is told,
// listed once; tests/calls/test_protocol_vocabulary.py checks the two lists agree. A refusal
// comes first as {"type": "error", "code"} too (daphne drops close reasons): same texts.
export const CLOSE_TEXT = Object.freeze({
  4400: TEXT.server, // missing or malformed query parameters
  4401: TEXT.expired, // bad or expired token
  4403: TEXT.origin, // origin not allowed
  4404: TEXT.gone,
  4408: TEXT.expired, // no hello in time
  4409: TEXT.taken,
  4413: TEXT.tooBig,
  4429: TEXT.tooMany,
  4500: TEXT.server, // server error: the call ended
  4503: TEXT.busy, // the server carries its most calls: try again in a moment
  1011: TEXT.server, // daphne's own, when the server application itself crashes
});
const END_TEXT = {
  hangup: "",
  assistant_ended: TEXT.assistantEnded,
  max_duration: TEXT.maxDuration,
  silence_timeout: TEXT.silence,
  client_gone: "",
};

/** The key of TEXT a message is, for the UI's translations and error codes. */
function keyOf(message) {
  return Object.keys(TEXT).find((k) => TEXT[k] === message) || null;
}

class CallError extends Error {}

function createCallMessage(status, body) {
  if (status === 403) return TEXT.origin;
  if (status === 404) return TEXT.noWidget;
  if (status === 429) return TEXT.rateLimited;
  if (status === 503) return TEXT.busy; // MAX_CONCURRENT_CALLS: the server is full
  if (status === 400 && body) {
    const errors = body.errors || {};
    const first = Object.values(errors).flat()[0];
    if (typeof first === "string" && first) return first;
    if (typeof body.message === "string" && body.message) return body.message;
  }
  return TEXT.noCall;
}

export class Call {
  constructor({ host, widgetId, consent, ctx, ui, csrfToken = "", variables = null, textOnly = false }) {
    this.host = host;
    this.textOnly = !!textOnly; // no microphone: the visitor types
    // Only the admin's live preview has one: create-call then goes with the staff session.
    this.csrfToken = csrfToken;
    this.widgetId = widgetId;
    this.consent = consent;
    this.variables = variables; // the snippet's data-variables: the call's variables
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
    this.transport = null; // "webrtc" | "websocket" once hello is sent
    this.rtc = null;
    this.inbox = []; // negotiation messages not yet taken by a waiter
    this.waiter = null;
    this.gumAt = 0;
    this.firstFrameAt = 0;
    this.replyStarts = [];
  }

  _option(name) {
    const el = this.ui;
    return el && el.getAttribute ? el.getAttribute(name) : null;
  }

  _rtcWanted() {
    return (
      !this.textOnly &&
      typeof window.RTCPeerConnection === "function" &&
      this._option("data-audio") !== "websocket"
    );
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
    if (!this.textOnly && (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)) {
      throw new CallError(TEXT.noMic);
    }
    if (!this.ctx || !this.ctx.audioWorklet) throw new CallError(TEXT.audio);
    const ctx = this.ctx;
    const resumed = ctx.resume().catch(() => {});
    // Fetched while the microphone starts; used only if WebRTC is offered.
    this.rtcModule = this._rtcWanted()
      ? import(new URL("webrtc.js", import.meta.url).href)
      : Promise.reject(new Error("WebRTC not wanted"));
    this.rtcModule.catch(() => {});
    const worklets = Promise.all([
      this.textOnly ? null : ctx.audioWorklet.addModule(`${host}/static/widget/capture-worklet.js`),
      ctx.audioWorklet.addModule(`${host}/static/widget/player-worklet.js`),
    ]);
    worklets.catch(() => {});
    if (!this.textOnly) {
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        });
      } catch (err) {
        const name = err && err.name;
        throw new CallError(name === "NotFoundError" || name === "OverconstrainedError" ? TEXT.noMic : TEXT.mic);
      }
      this.gumAt = performance.now();
      if (this.done) return this._cleanup();
      this.ui.onCallStats({ micLive: true });
    }
    try {
      await worklets;
      await resumed;
    } catch (_) {
      throw new CallError(TEXT.audio);
    }
    this.ui.onCallStats({ audioContext: ctx.state });
    if (this.done) return;
    if (!this.textOnly) this._setupCapture();

    const body = { widget_id: this.widgetId };
    if (this.consent) body.consent = this.consent;
    if (this.variables) body.variables = this.variables;
    let res;
    try {
      res = await fetch(`${host}/v1/widgets/create-call`, {
        method: "POST",
        mode: "cors",
        credentials: this.csrfToken ? "same-origin" : "omit",
        headers: this.csrfToken
          ? { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken }
          : { "Content-Type": "application/json" },
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
    this._connect(data.gateway.url);
  }

  /** Microphone -> capture worklet (frames are sent only once WebSocket audio is chosen). */
  _setupCapture() {
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
  }

  _setupPlayer() {
    const ctx = this.ctx;
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
      this.open = true;
      this.ui.onCallStats({ socket: "open" });
      this._chooseAudio().catch((err) => {
        if (window.console) console.error("voice widget:", err);
        if (!this.done) this._finish("error", TEXT.server);
      });
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (_) {
          return;
        }
        if (!this.transport && this._negotiation(msg)) return;
        this._onEvent(msg);
      } else if (this.player && this.transport === "websocket" && ev.data.byteLength) {
        this.player.port.postMessage(ev.data, [ev.data]);
      }
    };
    ws.onclose = (ev) => this._onClose(ev);
    ws.onerror = () => {};
  }

  /** Before hello: webrtc.* messages (and webrtc-stage errors) go to the negotiation. */
  _negotiation(msg) {
    const type = msg && msg.type;
    const mine = typeof type === "string" && (type.startsWith("webrtc.") ||
      (type === "error" && msg.stage === "webrtc"));
    if (!mine) return false;
    const w = this.waiter;
    if (w && w.types.includes(type)) {
      this.waiter = null;
      w.resolve(msg);
    } else {
      this.inbox.push(msg);
    }
    return true;
  }

  /** The next negotiation message of one of `types`, or null after `ms`. */
  _next(types, ms) {
    const i = this.inbox.findIndex((m) => types.includes(m.type));
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.waiter && this.waiter.resolve === done) this.waiter = null;
        resolve(null);
      }, ms);
      this.timers.push(timer);
      const done = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
      this.waiter = { types, resolve: done };
    });
  }

  async _chooseAudio() {
    const openedAt = performance.now();
    let result = { ok: false, reason: "not-offered" };
    const config = this._rtcWanted() ? await this._next(["webrtc.config"], CONFIG_WAIT_MS) : null;
    if (this.done) return;
    if (config) this.ui.onCallStats({ rtcConfigMs: Math.round(performance.now() - openedAt) });
    if (config && config.enabled !== false) {
      const timeout = Number(this._option("data-ice-timeout-ms")) || ICE_TIMEOUT_MS;
      try {
        const mod = await this.rtcModule;
        if (this.done) return;
        this.rtc = new mod.RtcAudio({
          ctx: this.ctx,
          stream: this.stream,
          parent: this.ui.shadowRoot || document.body,
          sink: this.sink,
          onStats: (d) => this._onRemoteStats(d),
          onStart: (t) => this._onReplyStart(t),
        });
        result = await this.rtc.connect({
          iceServers: config.ice_servers,
          send: (obj) => this._send(obj),
          next: (types, ms) => this._next(types, ms),
          timeoutMs: timeout,
        });
      } catch (err) {
        if (window.console) console.warn("voice widget: WebRTC failed, using WebSocket audio", err);
        result = { ok: false, reason: "error" };
      }
      if (this.done) return;
      const t = (this.rtc && this.rtc.timings) || {};
      this.ui.onCallStats({
        rtcResult: result.reason,
        rtcGatherMs: t.gatherMs,
        rtcConnectMs: t.connectMs,
      });
      if (!result.ok && this.rtc) {
        this.rtc.close();
        this.rtc = null;
      }
    }
    this.inbox = [];
    this.transport = result.ok ? "webrtc" : "websocket";
    this.ui.onCallStats({ audio: this.transport, audioChosenMs: Math.round(performance.now() - openedAt) });
    if (result.ok) {
      // The peer carries the microphone now; the capture worklet is not needed.
      for (const node of [this.source, this.capture]) {
        try {
          if (node) node.disconnect();
        } catch (_) {
          /* already disconnected */
        }
      }
      if (this.muted) this.rtc.setMuted(true);
      this.ui.onCallStats({ micStartedAt: this.gumAt });
    } else {
      this._setupPlayer();
      if (this.firstFrameAt) this.ui.onCallStats({ micStartedAt: this.firstFrameAt });
      this.timers.push(setInterval(() => this._reportPlayback(false), PLAYBACK_REPORT_MS));
    }
    if (this.textOnly) this._send({ type: "hello", audio: this.transport, text_only: true });
    else this._send({ type: "hello", audio: this.transport });
  }

  /** Sends a line the visitor typed (a user turn; the server echoes it as a transcript line).
   *  False when the call cannot take it (not started yet, ending, blank). */
  sendText(text) {
    const line = typeof text === "string" ? text.trim().slice(0, MAX_TYPED_CHARS) : "";
    if (!line || !this.started || this.done || this.endRequested) return false;
    this._send({ type: "text", text: line });
    return true;
  }

  _send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  _onMicFrame(frame) {
    if (!this.firstFrameAt) {
      this.firstFrameAt = performance.now();
      if (this.transport === "websocket") this.ui.onCallStats({ micStartedAt: this.firstFrameAt });
    }
    const ws = this.ws;
    if (this.transport !== "websocket" || !this.open || !ws || ws.readyState !== WebSocket.OPEN || this.endRequested) return;
    // Keep the socket from piling up if the network stalls (about 1 s of audio).
    if (ws.bufferedAmount > 50 * FRAME_BYTES) return;
    ws.send(this.muted ? SILENCE : frame);
  }

  _onPlayerStats(d) {
    if (!d) return;
    if (d.start != null) return this._onReplyStart(d.start);
    this.played = d.played;
    this.playedMs = Math.round((d.played * 1000) / this.srcRate);
    if (d.rms > this.peakRms) this.peakRms = d.rms;
    this.ui.onCallStats({ playedMs: this.playedMs, outputRms: d.rms, peakRms: this.peakRms });
    if (d.flushed) this._reportPlayback(true);
  }

  _onRemoteStats(d) {
    this.playedMs = d.playedMs;
    if (d.rms > this.peakRms) this.peakRms = d.rms;
    this.ui.onCallStats({ playedMs: this.playedMs, outputRms: d.rms, peakRms: this.peakRms });
  }

  /** An utterance began to be heard at context time `t`: note it on the performance clock. */
  _onReplyStart(t) {
    const ctx = this.ctx;
    let at;
    const ts = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : null;
    if (ts && ts.performanceTime > 0) {
      at = ts.performanceTime + (t - ts.contextTime) * 1000;
    } else {
      const latency = ctx.outputLatency || ctx.baseLatency || 0;
      at = performance.now() + (t - ctx.currentTime + latency) * 1000;
    }
    this.replyStarts.push(Math.round(at * 10) / 10);
    this.ui.onCallStats({ replyStarts: this.replyStarts.slice() });
  }

  _reportPlayback(force) {
    if (!this.started || this.transport !== "websocket") return;
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
        if (this.ui.onCallStarted) this.ui.onCallStarted(this.callId);
        if (this.ui.state === "connecting") this.ui.onCallState("listening");
        break;
      case "state":
        if (!this.endRequested && msg.state) this.ui.onCallState(msg.state);
        break;
      case "transcript":
        this.ui.onTranscript(msg.role, msg.text, !!msg.final, !!msg.interrupted);
        break;
      case "interruption":
        // The assistant's next final line is what the visitor heard of the cut reply.
        if (this.ui.onInterruption) this.ui.onInterruption();
        // On WebRTC the server holds the playout buffer and has flushed it already.
        if (this.player && this.transport === "websocket") {
          this.player.port.postMessage({ type: "flush" });
        }
        break;
      case "error":
        if (msg.stage === "webrtc") break; // a late negotiation error: WebSocket audio is on
        if (msg.stage === "protocol" && msg.code == null) {
          // A refused message (a typed line too fast, say): the call goes on.
          if (this.ui.onRefused) this.ui.onRefused(msg.message || "");
          break;
        }
        if (window.console) console.warn("voice widget: server error", msg.stage, msg.message);
        this._finish("error", CLOSE_TEXT[msg.code] || TEXT.server);
        break;
      case "call.ended":
        this.endedReason = msg.reason || "hangup";
        if (msg.reason === "error") this._finish("error", TEXT.server);
        else if (msg.reason === "connection_lost") this._finish("error", TEXT.lost);
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
    if (this.rtc && this.transport === "webrtc") this.rtc.setMuted(this.muted);
    this._send({ type: "mute", muted: this.muted });
  }

  /** The visitor hangs up; `now` skips waiting for the server's call.ended. */
  hangup(now) {
    if (this.done) return;
    if (now || !this.transport || !this.ws || this.ws.readyState !== WebSocket.OPEN) {
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
    const reason = state === "error" ? "error" : this.endedReason || "hangup";
    this.ui.onCallFinished(state, message, { reason, code: keyOf(message) });
  }

  _cleanup() {
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.timers = [];
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(null);
    }
    if (this.rtc) {
      this.rtc.close();
      this.rtc = null;
    }
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
      this.ctx.close().then(() => this.ui.onCallStats({ audioContext: "closed" }), () => {});
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
