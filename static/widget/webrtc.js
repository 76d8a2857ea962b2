// WebRTC audio for one call (README "The call socket protocol": webrtc.config / webrtc.offer /
// webrtc.answer). Imported by call.js only when the server offers WebRTC and the browser has
// RTCPeerConnection. The microphone track goes to the server peer; the assistant's track plays
// through an <audio autoplay> element (which is also what makes remote audio reach Web Audio)
// and is measured by the "vw-meter" worklet (player-worklet.js) for playedMs / rms / onsets.
// No trickle ICE: the offer is sent once gathering is complete (aiortc needs it whole).

const GATHER_TIMEOUT_MS = 2000;

function waitEvent(target, event, done, ms) {
  return new Promise((resolve) => {
    if (done()) return resolve(true);
    let timer = null;
    const check = () => {
      if (!done()) return;
      target.removeEventListener(event, check);
      clearTimeout(timer);
      resolve(true);
    };
    target.addEventListener(event, check);
    timer = setTimeout(() => {
      target.removeEventListener(event, check);
      resolve(done());
    }, ms);
  });
}

export class RtcAudio {
  /** ctx: the call's AudioContext; stream: the microphone; parent: where <audio> goes;
   * onStats({playedMs, rms}) and onStart(contextTime) come from the meter. */
  constructor({ ctx, stream, parent, sink, onStats, onStart }) {
    this.ctx = ctx;
    this.stream = stream;
    this.parent = parent;
    this.sink = sink;
    this.onStats = onStats;
    this.onStart = onStart;
    this.pc = null;
    this.audio = null;
    this.source = null;
    this.meter = null;
    this.closed = false;
    this.timings = {};
  }

  /**
   * Negotiates over the call socket. send(obj) sends a message; next(types, ms) resolves with
   * the next message of one of `types` (or null after ms). Resolves {ok, reason}: ok once the
   * peer is connected within `timeoutMs` of the offer going out.
   */
  async connect({ iceServers, send, next, timeoutMs }) {
    const t0 = performance.now();
    const pc = new RTCPeerConnection({ iceServers: Array.isArray(iceServers) ? iceServers : [] });
    this.pc = pc;
    pc.ontrack = (ev) => this._onTrack(ev);
    const track = this.stream.getAudioTracks()[0];
    if (!track) return { ok: false, reason: "no-track" };
    pc.addTransceiver(track, { direction: "sendrecv", streams: [this.stream] });
    await pc.setLocalDescription(await pc.createOffer());
    await waitEvent(pc, "icegatheringstatechange", () => pc.iceGatheringState === "complete",
      GATHER_TIMEOUT_MS);
    if (this.closed) return { ok: false, reason: "closed" };
    const sentAt = performance.now();
    this.timings.gatherMs = Math.round(sentAt - t0);
    send({ type: "webrtc.offer", sdp: pc.localDescription.sdp });
    const deadline = sentAt + timeoutMs;
    const answer = await next(["webrtc.answer", "error"], Math.max(0, deadline - performance.now()));
    if (!answer || answer.type !== "webrtc.answer" || typeof answer.sdp !== "string") {
      return { ok: false, reason: answer ? "refused" : "no-answer" };
    }
    this.timings.answerMs = Math.round(performance.now() - sentAt);
    if (this.closed) return { ok: false, reason: "closed" };
    // No trickle: an answer without candidates can never connect, so do not wait for it.
    if (!/^a=candidate:/m.test(answer.sdp)) return { ok: false, reason: "no-candidates" };
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    const settled = () =>
      this.closed || ["connected", "failed", "closed"].includes(pc.connectionState);
    await waitEvent(pc, "connectionstatechange", settled, Math.max(0, deadline - performance.now()));
    this.timings.connectMs = Math.round(performance.now() - sentAt);
    if (pc.connectionState !== "connected") {
      return { ok: false, reason: `ice-${pc.connectionState}` };
    }
    return { ok: true, reason: "connected" };
  }

  _onTrack(ev) {
    if (this.audio || this.closed || ev.track.kind !== "audio") return;
    const stream = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
    // The element plays the assistant; without it remote audio would be silent to Web Audio.
    const audio = document.createElement("audio");
    audio.autoplay = true;
    audio.hidden = true;
    audio.setAttribute("data-voice-widget", "remote-audio");
    audio.srcObject = stream;
    this.parent.append(audio);
    const played = audio.play();
    if (played && played.catch) played.catch(() => {});
    this.audio = audio;
    try {
      this.source = this.ctx.createMediaStreamSource(stream);
      this.meter = new AudioWorkletNode(this.ctx, "vw-meter", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
      });
      this.meter.port.onmessage = (m) => {
        const d = m.data;
        if (!d) return;
        if (d.start != null) this.onStart(d.start);
        else this.onStats(d);
      };
      // The meter writes silence; the muted sink keeps it pulled by the graph.
      this.source.connect(this.meter).connect(this.sink);
    } catch (err) {
      if (window.console) console.warn("voice widget: cannot meter the assistant's audio", err);
    }
  }

  setMuted(muted) {
    for (const t of this.stream.getAudioTracks()) t.enabled = !muted;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    for (const node of [this.source, this.meter]) {
      try {
        if (node) node.disconnect();
      } catch (_) {
        /* already disconnected */
      }
    }
    if (this.meter) this.meter.port.onmessage = null;
    if (this.audio) {
      this.audio.pause();
      this.audio.srcObject = null;
      this.audio.remove();
    }
    if (this.pc) {
      this.pc.ontrack = null;
      try {
        this.pc.close();
      } catch (_) {
        /* closing anyway */
      }
    }
  }
}
