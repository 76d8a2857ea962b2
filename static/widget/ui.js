// The widget's UI: <voice-widget>, rendered in a Shadow DOM from the public configuration.
// Every configured text is set with textContent (never parsed as HTML); colours and radii go
// through CSS custom properties set with style.setProperty. The call machinery (call.js and
// its audio worklets) is imported only when a call starts.

const HEX = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;
const COLORS = [
  ["background_color", "--vw-bg", "#FFFFFF"],
  ["text_color", "--vw-text", "#111827"],
  ["button_color", "--vw-button", "#0EA5E9"],
  ["button_text_color", "--vw-button-text", "#FFFFFF"],
  ["border_color", "--vw-border", "#E5E7EB"],
  ["focus_outline_color", "--vw-focus", "#38BDF8"],
];
const RADII = [["card_radius", "--vw-card-radius", 12], ["button_radius", "--vw-button-radius", 8]];
export const STATES = {
  idle: "Ready",
  connecting: "Connecting…",
  listening: "Listening",
  thinking: "Thinking…",
  speaking: "Speaking",
  ended: "Call ended",
  error: "Error",
};
export const MESSAGES = {
  origin: "This website is not allowed to start calls with this assistant.",
  unavailable: "This assistant is not available right now.",
  missing: "This voice widget could not be found.",
  load: "The voice assistant could not be loaded. Check your connection and reload the page.",
  terms: "Please read and accept the terms to start a call.",
};
const FRESH_STATS = {
  playedMs: 0, outputRms: 0, peakRms: 0, callId: null, micLive: false, audio: null,
  micStartedAt: 0, replyStarts: [],
};
const CSS = `
:host{all:initial;display:block;max-width:360px}
:host([hidden]),[hidden]{display:none!important}
*{box-sizing:border-box}
.card{background:var(--vw-bg);color:var(--vw-text);border:1px solid var(--vw-border);border-radius:var(--vw-card-radius);padding:16px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;text-align:left;overflow-wrap:anywhere}
.cta{margin:0 0 12px;font-size:16px;font-weight:600}
.terms-text{margin:0 0 8px;max-height:7.5em;overflow:auto;white-space:pre-wrap;font-size:12px;border:1px solid var(--vw-border);border-radius:var(--vw-button-radius);padding:6px 8px}
.accept{display:flex;gap:8px;align-items:flex-start;margin:0 0 12px;font-size:13px;cursor:pointer}
.accept input{margin:2px 0 0;accent-color:var(--vw-button)}
.actions{display:flex;gap:8px;flex-wrap:wrap}
button{font:inherit;font-weight:600;padding:8px 16px;min-height:36px;border:1px solid var(--vw-button);border-radius:var(--vw-button-radius);background:var(--vw-button);color:var(--vw-button-text);cursor:pointer}
button.secondary{background:transparent;color:var(--vw-text);border-color:var(--vw-border)}
button:disabled{opacity:.55;cursor:not-allowed}
button:focus-visible,input:focus-visible,.terms-text:focus-visible,.transcript:focus-visible{outline:3px solid var(--vw-focus);outline-offset:2px}
.status{margin:12px 0 0;font-size:13px}
.message{margin:4px 0 0;font-size:13px;font-weight:600}
.transcript{list-style:none;margin:12px 0 0;padding:8px 0 0;max-height:12em;overflow:auto;border-top:1px solid var(--vw-border);font-size:13px}
.transcript li{margin:0 0 6px}
.who{font-weight:600;margin-right:4px}
.partial{opacity:.7}
`;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = String(text);
  return e;
}

export class VoiceWidget extends HTMLElement {
  constructor() {
    super();
    this._root = this.attachShadow({ mode: "open" });
    this._state = "idle";
    this._call = null;
    this._opts = { host: "", widgetId: "", config: {} };
    this._stats = { ...FRESH_STATS };
    this._painted = false;
  }

  /** Read-only view for tests and diagnostics. */
  get debug() {
    const stats = { state: this._state, ...this._stats };
    stats.replyStarts = Object.freeze([...(stats.replyStarts || [])]);
    return Object.freeze(stats);
  }

  get state() {
    return this._state;
  }

  connectedCallback() {
    if (this._painted) return;
    this._painted = true;
    requestAnimationFrame(() => {
      if (window.performance && performance.mark) performance.mark("voice-widget:first-paint");
      this.dispatchEvent(new Event("voice-widget:painted"));
    });
  }

  disconnectedCallback() {
    if (this._call) this._call.hangup(true);
  }

  /** opts: {host, widgetId, config, preview, csrfToken}: a preview (the admin's) starts calls
   *  only with a csrfToken, which sends create-call with the signed-in staff user's session. */
  configure(opts) {
    this._opts = { ...this._opts, ...opts };
    this._render();
  }

  _render() {
    const cfg = this._opts.config || {};
    const root = this._root;
    root.textContent = "";
    const style = el("style");
    style.textContent = CSS;
    const card = el("div", "card");
    card.setAttribute("role", "region");
    card.setAttribute("aria-label", "Voice assistant");
    card.setAttribute("part", "card");
    for (const [name, prop, fallback] of COLORS) {
      const v = cfg[name];
      card.style.setProperty(prop, typeof v === "string" && HEX.test(v) ? v : fallback);
    }
    for (const [name, prop, fallback] of RADII) {
      const n = cfg[name];
      card.style.setProperty(prop, `${Number.isInteger(n) && n >= 0 && n <= 64 ? n : fallback}px`);
    }
    const cta = el("p", "cta", cfg.call_to_action || "");
    cta.hidden = !cfg.call_to_action;
    card.append(cta);

    this._accept = null;
    if (cfg.terms_and_condition) {
      const box = el("div", "terms");
      const text = el("div", "terms-text", cfg.terms_and_condition_content || "");
      text.tabIndex = 0;
      text.setAttribute("role", "document");
      text.setAttribute("aria-label", "Terms");
      const label = el("label", "accept");
      const input = el("input");
      input.type = "checkbox";
      input.className = "accept-input";
      label.append(input, el("span", null, "I have read and accept the terms above."));
      input.addEventListener("change", () => this._sync());
      box.append(text, label);
      card.append(box);
      this._accept = input;
    }

    const actions = el("div", "actions");
    this._start = el("button", "start", cfg.start_call_button || "Start call");
    this._mute = el("button", "mute secondary", "Mute");
    this._end = el("button", "end", cfg.end_call_button || "End call");
    for (const b of [this._start, this._mute, this._end]) b.type = "button";
    this._mute.setAttribute("aria-pressed", "false");
    this._start.addEventListener("click", () => this._startCall());
    this._end.addEventListener("click", () => this._call && this._call.hangup());
    this._mute.addEventListener("click", () => this._toggleMute());
    actions.append(this._start, this._mute, this._end);
    card.append(actions);

    this._status = el("p", "status");
    this._status.setAttribute("role", "status");
    this._status.setAttribute("aria-live", "polite");
    this._message = el("p", "message");
    this._message.setAttribute("aria-live", "polite");
    this._transcript = el("ol", "transcript");
    this._transcript.setAttribute("aria-label", "Transcript");
    this._transcript.tabIndex = 0;
    this._transcript.hidden = true;
    card.append(this._status, this._message, this._transcript);
    root.append(style, card);
    this._partials = {};
    this._setState(this._state);
    this._setMessage(this._blocker() || "");
  }

  _blocker() {
    const cfg = this._opts.config || {};
    if (cfg.load_error === 404) return MESSAGES.missing;
    if (cfg.load_error) return MESSAGES.load;
    if (cfg.origin_allowed === false) return MESSAGES.origin;
    if (cfg.available === false) return MESSAGES.unavailable;
    return null;
  }

  _sync() {
    const inCall = !!this._call;
    const termsOk = !this._accept || this._accept.checked;
    this._start.hidden = inCall;
    this._end.hidden = !inCall;
    this._mute.hidden = !inCall;
    const previewOnly = !!this._opts.preview && !this._opts.csrfToken;
    this._start.disabled = inCall || !!this._blocker() || !termsOk || previewOnly;
    if (this._accept) this._accept.disabled = inCall;
    if (!inCall && !termsOk && !this._blocker()) this._start.title = MESSAGES.terms;
    else this._start.removeAttribute("title");
  }

  _setState(state) {
    this._state = state;
    this.setAttribute("data-state", state);
    if (this._status) {
      this._status.textContent = STATES[state] || state;
      this._status.setAttribute("data-state", state);
    }
    if (this._start) this._sync();
  }

  _setMessage(text) {
    if (!this._message) return;
    this._message.textContent = text || "";
    this._message.hidden = !text;
  }

  _toggleMute() {
    if (!this._call) return;
    const muted = !this._call.muted;
    this._call.setMuted(muted);
    this._mute.textContent = muted ? "Unmute" : "Mute";
    this._mute.setAttribute("aria-pressed", String(muted));
  }

  async _startCall() {
    if (this._call || this._start.disabled) return;
    const cfg = this._opts.config || {};
    // Made inside the click so that the browser lets it play sound.
    let ctx = null;
    try {
      ctx = new (window.AudioContext || window.webkitAudioContext)({ latencyHint: "interactive" });
    } catch (_) {
      ctx = null;
    }
    const hadFocus = this._root.activeElement === this._start;
    this._transcript.textContent = "";
    this._transcript.hidden = true;
    this._partials = {};
    this._stats = { ...FRESH_STATS };
    this._setMessage("");
    this._mute.textContent = "Mute";
    this._mute.setAttribute("aria-pressed", "false");
    // Stands in for the call while its module loads; hanging up meanwhile cancels the start.
    const placeholder = { muted: false, setMuted() {}, hangup() { placeholder.cancelled = true; } };
    this._call = placeholder;
    this._setState("connecting");
    if (hadFocus) this._end.focus();
    let call;
    try {
      const mod = await import(new URL("call.js", import.meta.url).href);
      call = new mod.Call({
        host: this._opts.host,
        widgetId: this._opts.widgetId,
        consent: cfg.terms_and_condition
          ? { accepted: true, terms_sha256: cfg.terms_sha256 }
          : null,
        ctx,
        ui: this,
        csrfToken: this._opts.csrfToken || "",
      });
    } catch (err) {
      if (ctx) ctx.close().catch(() => {});
      this._call = null;
      this._setState("error");
      this._setMessage(MESSAGES.load);
      return;
    }
    if (this._call !== placeholder) return;
    this._call = call;
    if (placeholder.cancelled) call.hangup(true);
    else call.start();
  }

  // ---- callbacks from call.js ----
  onCallState(state) {
    if (this._call) this._setState(state);
  }

  onCallStats(stats) {
    Object.assign(this._stats, stats);
  }

  onTranscript(role, text, final) {
    const who = role === "user" ? "user" : "assistant";
    let li = this._partials[who];
    if (!li) {
      li = el("li", `turn ${who}`);
      li.append(el("span", "who", who === "user" ? "You:" : "Assistant:"), el("span", "text"));
      this._transcript.append(li);
    }
    li.lastChild.textContent = text || "";
    li.classList.toggle("partial", !final);
    if (final) delete this._partials[who];
    else this._partials[who] = li;
    this._transcript.hidden = false;
    this._transcript.scrollTop = this._transcript.scrollHeight;
  }

  onCallFinished(state, message) {
    const hadFocus = this._root.activeElement;
    this._call = null;
    this._setState(state);
    this._setMessage(message || "");
    if (hadFocus === this._end || hadFocus === this._mute) this._start.focus();
  }
}

export function define() {
  if (!customElements.get("voice-widget")) customElements.define("voice-widget", VoiceWidget);
}

/** Creates a configured <voice-widget> (not yet in the document). */
export function mount(opts) {
  if (window.performance && performance.mark) performance.mark("voice-widget:mount");
  define();
  const widget = document.createElement("voice-widget");
  widget.configure(opts);
  return widget;
}
