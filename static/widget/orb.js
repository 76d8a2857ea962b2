// The live voice orb and the silent-microphone hint (issue 12). Imported by live.js, so it
// loads with the call machinery when a call starts, never before the widget first paints.
//
// The orb (<div class="orb" data-state data-level data-active>) follows the call's state: it
// grows with the visitor's microphone level while listening, with the assistant's output
// level (call.js's outputRms) while speaking, and pulses while thinking. With
// prefers-reduced-motion it neither moves nor animates: a level above the quiet threshold
// only turns on a static ring (data-active). The state line (ui.js) says the state in words.
//
// The hint: when the microphone sends only silence for SILENT_MS after the call starts (and
// the visitor has not muted it), the widget says it cannot hear the visitor and what to
// check; it goes away as soon as sound comes from the microphone.

const TICK_MS = 50;
const SILENT_MS = 5000;
const QUIET_RMS = 0.004; // about -48 dBFS: below this the microphone counts as silent
// English here (loaded with the call, not before first paint); the other languages in texts.js.
const SILENT_MIC =
  "We can't hear you. Check that your microphone is not muted, that the right microphone is chosen, and that your system lets this browser use it.";
const CSS = `
.orb-box{display:flex;justify-content:center;padding:10px 0 2px}
.orb{--vw-level:0;width:56px;height:56px;border-radius:50%;background:radial-gradient(circle at 35% 35%,#fff6,transparent 60%),var(--vw-button);opacity:.55;transform:scale(calc(.8 + var(--vw-level) * .45));transition:transform 90ms linear,opacity .2s,box-shadow .2s}
.orb[data-state=listening],.orb[data-state=speaking]{opacity:1}
.orb[data-state=speaking]{box-shadow:0 0 0 4px color-mix(in srgb,var(--vw-button) 35%,transparent)}
.orb[data-state=thinking]{opacity:.85;animation:vw-think 1.1s ease-in-out infinite}
@keyframes vw-think{50%{transform:scale(.9);opacity:.5}}
.hint{margin:8px 0 0;font-size:13px;padding:6px 8px;border:1px solid var(--vw-border);border-radius:var(--vw-button-radius)}
@media (prefers-reduced-motion:reduce){.orb{transform:none;transition:none;animation:none!important}.orb[data-active=true]{box-shadow:0 0 0 4px var(--vw-text)}}
`;

function level(rms) {
  // -55 dBFS -> 0, -15 dBFS -> 1
  if (!(rms > 0)) return 0;
  const v = (20 * Math.log10(rms) + 55) / 40;
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

export class Orb {
  /** widget: the <voice-widget> (its _call, _stats, _t); `before`: the node to put it above. */
  constructor(widget, before) {
    this.w = widget;
    const style = document.createElement("style");
    style.textContent = CSS;
    const box = (this.box = document.createElement("div"));
    box.className = "orb-box";
    const orb = (this.el = document.createElement("div"));
    orb.className = "orb";
    orb.setAttribute("aria-hidden", "true"); // the state line says it in words
    orb.setAttribute("part", "orb");
    box.append(style, orb);
    const hint = (this.hint = document.createElement("p"));
    hint.className = "hint";
    hint.setAttribute("role", "status");
    hint.hidden = true;
    before.before(box);
    before.after(hint);
    this.lvl = 0;
    this.mic = 0;
    this.heard = false;
    this.since = 0; // when the silence being timed began (call start, or unmute)
    this.analyser = null;
    this.setState(widget.state);
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  setState(state) {
    this.state = state;
    this.el.setAttribute("data-state", state);
  }

  /** The call has started: the silence clock starts now. */
  started() {
    this.since = performance.now();
  }

  _micRms() {
    const call = this.w._call;
    if (!this.analyser && call && call.stream && call.ctx && call.ctx.state !== "closed") {
      try {
        const src = call.ctx.createMediaStreamSource(call.stream);
        this.analyser = call.ctx.createAnalyser();
        this.analyser.fftSize = 1024;
        this.buf = new Float32Array(this.analyser.fftSize);
        src.connect(this.analyser);
        // Pulled by the graph in every browser: into call.js's muted sink (gain 0).
        if (call.sink) this.analyser.connect(call.sink);
        this.src = src;
      } catch (_) {
        this.analyser = null;
      }
    }
    if (!this.analyser) return 0;
    this.analyser.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (let i = 0; i < this.buf.length; i++) sum += this.buf[i] * this.buf[i];
    return Math.sqrt(sum / this.buf.length);
  }

  tick() {
    const call = this.w._call;
    const muted = !!(call && call.muted);
    const rms = muted ? 0 : this._micRms();
    this.mic = rms;
    const now = performance.now();
    if (rms > QUIET_RMS) {
      this.heard = true;
      this._hint(false);
    } else if (muted) {
      this.since = this.since && now;
      this._hint(false);
    } else if (this.since && !this.heard && now - this.since >= SILENT_MS) {
      this._hint(true);
    }
    const out = this.w._stats.outputRms || 0;
    const src = this.state === "listening" ? rms : this.state === "speaking" ? out : 0;
    const target = level(src);
    // Quick to rise, slower to fall: it follows syllables without flicker.
    this.lvl = target > this.lvl ? target : this.lvl * 0.7 + target * 0.3;
    if (this.lvl < 0.01) this.lvl = 0;
    const shown = Math.round(this.lvl * 100) / 100;
    if (shown !== this.shown) {
      this.shown = shown;
      this.el.style.setProperty("--vw-level", String(shown));
      this.el.setAttribute("data-level", String(shown));
    }
    const active = src > QUIET_RMS;
    if (active !== this.active) {
      this.active = active;
      this.el.setAttribute("data-active", String(active));
    }
  }

  _hint(on) {
    if (on === !this.hint.hidden) return;
    this.hint.textContent = on ? this.w._t.silentMic || SILENT_MIC : "";
    this.hint.hidden = !on;
    this.w.onCallStats({ micSilent: on });
  }

  /** The call is over: stop metering and take the orb and the hint away. */
  stop() {
    clearInterval(this.timer);
    try {
      if (this.src) this.src.disconnect();
    } catch (_) {
      /* the context is closed already */
    }
    this.box.remove();
    this.hint.remove();
  }
}
