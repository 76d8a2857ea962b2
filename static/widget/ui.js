// The widget's UI: <voice-widget>, rendered in a Shadow DOM from the public configuration.
// Every configured text is set with textContent (never parsed as HTML); colours and radii go
// through CSS custom properties set with style.setProperty. The call machinery (call.js and
// its audio worklets) is imported only when a call starts.
//
// Placement: "inline" (the card where the tag is) or "floating" (a round launcher in a corner
// that opens the card as a panel; closing the panel keeps the call). Host page CSS cannot reach
// in: :host resets everything with !important (an inner context's !important beats the page's)
// and the inherited properties are set explicitly.
//
// Host-page API on the element: start(), end(), mute(on), sendText(text), open(), close();
// DOM events (bubbling, composed) voicewidget:ready, :call-start, :state, :message, :call-end,
// :error. See README "Embedding the widget".

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
const PLACEMENTS = ["floating", "inline"];
const POSITIONS = ["bottom-right", "bottom-left", "top-right", "top-left"];

// Built-in texts: English here; German, French and Spanish in texts.js, loaded only when one
// of them is chosen (data-language, else the assistant's language, else English).
const LANGS = ["en", "de", "fr", "es"];
export let CALL_TEXTS = {};
let extra = null;
function loadTexts() {
  extra =
    extra ||
    import(new URL("texts.js", import.meta.url).href).then(
      (m) => {
        Object.assign(TEXTS, m.UI);
        CALL_TEXTS = m.CALL;
      },
      () => {
        for (const l of LANGS) TEXTS[l] = TEXTS[l] || TEXTS.en; // English rather than nothing
      },
    );
  return extra;
}
export const TEXTS = {
  en: {
    idle: "Ready",
    connecting: "Connecting…",
    listening: "Listening",
    thinking: "Thinking…",
    speaking: "Speaking",
    ended: "Call ended",
    error: "Error",
    disabled: "Unavailable",
    origin: "This website is not allowed to start calls with this assistant.",
    unavailable: "This assistant is not available right now.",
    missing: "This voice widget could not be found.",
    load: "The voice assistant could not be loaded. Check your connection and reload the page.",
    terms: "Please read and accept the terms to start a call.",
    accept: "I have read and accept the terms above.",
    termsLabel: "Terms",
    start: "Start call",
    end: "End call",
    mute: "Mute",
    unmute: "Unmute",
    close: "Close",
    you: "You:",
    assistant: "Assistant:",
    interrupted: "(interrupted)",
    transcript: "Transcript",
    region: "Voice assistant",
    live: "call in progress",
    noText: "Typed messages can be sent only during a call.",
    typeLabel: "Type a message",
    send: "Send",
    typeInstead: "Continue by typing",
    textOnly: "No microphone: type your messages. The assistant answers aloud.",
    variables: "data-variables must be a JSON object of strings.",
  },
};
const EN = TEXTS.en;
const FRESH_STATS = {
  playedMs: 0, outputRms: 0, peakRms: 0, callId: null, micLive: false, audio: null,
  micStartedAt: 0, replyStarts: [],
};
const FONT = '14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif';
// :host's !important beats the host page's (an inner context wins for important rules);
// `all:initial` drops what the page sets, then every inherited property is set on purpose.
const CSS = `
:host{all:initial!important;display:block!important;max-width:360px!important;font:${FONT}!important;color:#111827!important;letter-spacing:normal!important;word-spacing:normal!important;text-transform:none!important;text-align:left!important;text-indent:0!important;text-shadow:none!important;direction:ltr!important;line-height:1.45!important;white-space:normal!important;font-style:normal!important;font-weight:400!important;visibility:visible!important;cursor:auto!important;pointer-events:auto!important;box-sizing:border-box!important}
:host([placement=floating]){position:fixed!important;z-index:2147483000!important;max-width:none!important;width:56px!important;height:56px!important;margin:0!important}
:host([placement=floating][position^=bottom]){bottom:16px!important}
:host([placement=floating][position^=top]){top:16px!important}
:host([placement=floating][position$=right]){right:16px!important}
:host([placement=floating][position$=left]){left:16px!important}
:host([hidden]),[hidden]{display:none!important}
*{box-sizing:border-box}
.vw{font:${FONT};color:var(--vw-text)}
.card{position:relative;background:var(--vw-bg);color:var(--vw-text);border:1px solid var(--vw-border);border-radius:var(--vw-card-radius);padding:16px;font:${FONT};text-align:left;overflow-wrap:anywhere}
.panel{position:absolute;width:min(360px,calc(100vw - 32px));max-height:calc(100vh - 104px);overflow:auto;box-shadow:0 8px 28px rgba(0,0,0,.25)}
:host([position^=bottom]) .panel{bottom:68px}
:host([position^=top]) .panel{top:68px}
:host([position$=right]) .panel{right:0}
:host([position$=left]) .panel{left:0}
.launcher{position:relative;width:56px;height:56px;min-height:0;padding:0;border-radius:50%;display:flex;align-items:center;justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.3)}
.launcher svg{width:26px;height:26px;fill:currentColor}
.live{position:absolute;top:2px;right:2px;width:14px;height:14px;border-radius:50%;background:#16A34A;border:2px solid #fff;animation:vw-pulse 1.6s infinite}
@keyframes vw-pulse{50%{opacity:.45}}
@media (prefers-reduced-motion:reduce){.live{animation:none}}
.head{display:flex;gap:8px;align-items:flex-start}
.head .cta{flex:1}
button.close{background:transparent;color:var(--vw-text);border-color:transparent;padding:0;width:32px;min-height:32px;font-size:20px;line-height:1}
.cta{margin:0 0 12px;font-size:16px;font-weight:600}
.terms-text{margin:0 0 8px;max-height:7.5em;overflow:auto;white-space:pre-wrap;font-size:12px;border:1px solid var(--vw-border);border-radius:var(--vw-button-radius);padding:6px 8px}
.accept{display:flex;gap:8px;align-items:flex-start;margin:0 0 12px;font-size:13px;cursor:pointer}
.accept input{margin:2px 0 0;accent-color:var(--vw-button)}
.actions{display:flex;gap:8px;flex-wrap:wrap}
button{font:inherit;font-weight:600;padding:8px 16px;min-height:36px;border:1px solid var(--vw-button);border-radius:var(--vw-button-radius);background:var(--vw-button);color:var(--vw-button-text);cursor:pointer}
button.secondary{background:transparent;color:var(--vw-text);border-color:var(--vw-border)}
button:disabled{opacity:.55;cursor:not-allowed}
.off .accept,.off .actions,.launcher.off{opacity:.55;cursor:not-allowed}
button:focus-visible,input:focus-visible,.terms-text:focus-visible,.transcript:focus-visible{outline:3px solid var(--vw-focus);outline-offset:2px}
.status{margin:12px 0 0;font-size:13px}
.message{margin:4px 0 0;font-size:13px;font-weight:600}
.transcript{list-style:none;margin:12px 0 0;padding:8px 0 0;max-height:12em;overflow:auto;border-top:1px solid var(--vw-border);font-size:13px}
.transcript li{margin:0 0 6px}
.who{font-weight:600;margin-right:4px}
.flag{margin-left:4px;font-style:italic;opacity:.8}
.partial{opacity:.7}
.sr{position:absolute;top:0;left:0;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
`;
const MIC_SVG =
  '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11z"/></svg>';

// The WCAG contrast ratio of two "#rgb"/"#rrggbb" colours.
function contrast(a, b) {
  const lum = (h) => {
    const v = h.length === 4 ? h.replace(/\w/g, "$&$&") : h;
    let l = 0.05;
    for (const [i, w] of [[1, 0.2126], [3, 0.7152], [5, 0.0722]]) {
      const s = parseInt(v.slice(i, i + 2), 16) / 255;
      l += w * (s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4);
    }
    return l;
  };
  const x = lum(a);
  const y = lum(b);
  return x > y ? x / y : y / x;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = String(text);
  return e;
}

/** The language to use: "de-CH" -> "de"; anything unknown -> "en". */
export function pickLanguage(...candidates) {
  for (const c of candidates) {
    const code = typeof c === "string" ? c.slice(0, 2).toLowerCase() : "";
    if (LANGS.includes(code)) return code;
  }
  return "en";
}

export class VoiceWidget extends HTMLElement {
  constructor() {
    super();
    this._root = this.attachShadow({ mode: "open" });
    this._state = "idle";
    this._call = null;
    this._opts = { host: "", widgetId: "", config: {}, attrs: {} };
    this._stats = { ...FRESH_STATS };
    this._painted = false;
    this._open = false;
    this._started = false; // voicewidget:call-start was sent for the current call
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

  /** "floating" or "inline": the snippet's data-placement, else the widget's configuration. */
  get placement() {
    const want = [this._opts.attrs.placement, (this._opts.config || {}).placement];
    return want.find((p) => PLACEMENTS.includes(p)) || "inline";
  }

  get position() {
    const want = [this._opts.attrs.position, (this._opts.config || {}).position];
    return want.find((p) => POSITIONS.includes(p)) || "bottom-right";
  }

  get language() {
    return pickLanguage(this._opts.attrs.language, (this._opts.config || {}).language);
  }

  connectedCallback() {
    if (this._painted) return;
    this._painted = true;
    requestAnimationFrame(() => {
      if (window.performance && performance.mark) performance.mark("voice-widget:first-paint");
      this.dispatchEvent(new Event("voice-widget:painted"));
      const blocker = this._blocker();
      this._emit("ready", { widgetId: this._opts.widgetId, placement: this.placement, disabled: blocker });
      if (blocker) this._emit("error", { code: blocker, message: this._t[blocker] });
    });
  }

  disconnectedCallback() {
    if (this._call) this._call.hangup(true);
  }

  /** opts: {host, widgetId, config, attrs, preview, csrfToken}: `attrs` are the snippet's
   *  data-* settings; a preview (the admin's) starts calls only with a csrfToken, which sends
   *  create-call with the signed-in staff user's session. */
  configure(opts) {
    this._opts = { ...this._opts, ...opts };
    this._render();
  }

  _emit(name, detail) {
    this.dispatchEvent(
      new CustomEvent(`voicewidget:${name}`, { detail, bubbles: true, composed: true }),
    );
  }

  _render() {
    const cfg = this._opts.config || {};
    const lang = this.language;
    if (!TEXTS[lang]) {
      // Shown once its texts are here (a moment): never a flash of English.
      loadTexts().then(() => this._render());
    }
    const t = (this._t = TEXTS[lang] || EN);
    const floating = this.placement === "floating";
    this.setAttribute("placement", this.placement);
    this.setAttribute("position", this.position);
    const root = this._root;
    root.textContent = "";
    const style = el("style");
    style.textContent = CSS;
    const wrap = el("div", "vw");
    const col = {};
    for (const [name, prop, fallback] of COLORS) {
      const v = cfg[name];
      col[prop] = typeof v === "string" && HEX.test(v) ? v : fallback;
    }
    // Text stays readable (WCAG AA 4.5:1): else dark or white text.
    for (const [fg, bg] of [["--vw-button-text", "--vw-button"], ["--vw-text", "--vw-bg"]]) {
      if (contrast(col[fg], col[bg]) < 4.5) {
        col[fg] = contrast("#111827", col[bg]) > contrast("#FFFFFF", col[bg]) ? "#111827" : "#FFFFFF";
      }
    }
    for (const prop in col) wrap.style.setProperty(prop, col[prop]);
    for (const [name, prop, fallback] of RADII) {
      const n = cfg[name];
      wrap.style.setProperty(prop, `${Number.isInteger(n) && n >= 0 && n <= 64 ? n : fallback}px`);
    }
    const card = (this._card = el("div", floating ? "card panel" : "card"));
    card.id = "vw-panel";
    card.setAttribute("role", floating ? "dialog" : "region");
    card.setAttribute("aria-label", cfg.call_to_action || t.region);
    card.setAttribute("part", "card");
    const head = el("div", "head");
    const cta = el("p", "cta", cfg.call_to_action || "");
    cta.hidden = !cfg.call_to_action;
    head.append(cta);
    this._launcher = null;
    if (floating) {
      const launcher = (this._launcher = el("button", "launcher"));
      launcher.type = "button";
      launcher.innerHTML = MIC_SVG; // a constant: no configured text is parsed as HTML
      this._live = el("span", "live");
      this._live.hidden = true;
      launcher.append(this._live);
      launcher.setAttribute("aria-controls", "vw-panel");
      launcher.addEventListener("click", () => (this._open ? this.close() : this.open()));
      const close = el("button", "close", "×");
      close.type = "button";
      close.setAttribute("aria-label", t.close);
      close.addEventListener("click", () => this.close());
      head.append(close);
      card.addEventListener("keydown", (e) => {
        if (e.key === "Escape") this.close();
      });
      wrap.append(launcher);
    }
    card.append(head);

    this._accept = null;
    if (cfg.terms_and_condition) {
      const box = el("div", "terms");
      const text = el("div", "terms-text", cfg.terms_and_condition_content || "");
      text.tabIndex = 0;
      text.setAttribute("role", "document");
      text.setAttribute("aria-label", t.termsLabel);
      const label = el("label", "accept");
      const input = el("input");
      input.type = "checkbox";
      input.className = "accept-input";
      label.append(input, el("span", null, t.accept));
      input.addEventListener("change", () => this._sync());
      box.append(text, label);
      card.append(box);
      this._accept = input;
    }

    const actions = el("div", "actions");
    this._start = el("button", "start", cfg.start_call_button || t.start);
    this._mute = el("button", "mute secondary", t.mute);
    this._end = el("button", "end", cfg.end_call_button || t.end);
    for (const b of [this._start, this._mute, this._end]) b.type = "button";
    this._mute.setAttribute("aria-pressed", "false");
    this._start.addEventListener("click", () => this._startCall());
    this._end.addEventListener("click", () => this.end());
    this._mute.addEventListener("click", () => this.mute(!(this._call && this._call.muted)));
    actions.append(this._start, this._mute, this._end);
    card.append(actions);

    this._status = el("p", "status");
    this._status.setAttribute("role", "status");
    this._status.setAttribute("aria-live", "polite");
    this._message = el("p", "message");
    this._message.setAttribute("aria-live", "polite");
    this._transcript = el("ol", "transcript");
    this._transcript.setAttribute("aria-label", t.transcript);
    this._transcript.tabIndex = 0;
    this._transcript.hidden = true;
    // Final transcript lines, each added once: what a screen reader announces.
    this._said = el("div", "sr");
    this._said.setAttribute("aria-live", "polite");
    this._said.setAttribute("aria-relevant", "additions");
    card.append(this._status, this._message, this._transcript, this._said);
    wrap.append(card);
    if (!TEXTS[lang]) wrap.style.visibility = "hidden";
    root.append(style, wrap);
    this._partials = {};
    this._cut = false;
    const blocker = this._blocker();
    if (blocker && !this._call) this._state = "disabled";
    else if (this._state === "disabled") this._state = "idle";
    this._setState(this._state);
    this._setMessage(blocker ? t[blocker] : "");
    this._showPanel();
  }

  /** Why calls cannot start here (a key of TEXTS), or null. */
  _blocker() {
    const cfg = this._opts.config || {};
    if (cfg.load_error === 404) return "missing";
    if (cfg.load_error) return "load";
    if (cfg.origin_allowed === false) return "origin";
    if (cfg.available === false) return "unavailable";
    return null;
  }

  _sync() {
    const inCall = !!this._call;
    const blocked = !!this._blocker();
    const termsOk = !this._accept || this._accept.checked;
    this._start.hidden = inCall;
    this._end.hidden = !inCall;
    this._mute.hidden = !inCall || !!this._call.textOnly;
    const previewOnly = !!this._opts.preview && !this._opts.csrfToken;
    this._start.disabled = inCall || blocked || !termsOk || previewOnly;
    if (this._accept) this._accept.disabled = inCall || blocked;
    this._card.classList.toggle("off", blocked && !inCall);
    if (!inCall && !termsOk && !blocked) this._start.title = this._t.terms;
    else this._start.removeAttribute("title");
    if (this._launcher) {
      const live = inCall && this._state !== "connecting";
      this._live.hidden = !inCall;
      const cta = (this._opts.config || {}).call_to_action || this._t.region;
      const note = inCall ? this._t.live : blocked ? this._t.disabled : "";
      this._launcher.setAttribute("aria-label", note ? `${cta} (${note})` : cta);
      this._launcher.classList.toggle("off", blocked && !inCall);
      this._launcher.dataset.live = String(live);
    }
  }

  _showPanel() {
    if (!this._launcher) {
      this._card.hidden = false;
      return;
    }
    this._card.hidden = !this._open;
    this._launcher.setAttribute("aria-expanded", String(this._open));
  }

  /** Floating: opens the panel (and moves focus into it). */
  open() {
    if (!this._launcher) return;
    this._open = true;
    this._showPanel();
    const target = [this._accept, this._start, this._end].find(
      (b) => b && !b.hidden && !b.disabled && !(b === this._accept && b.checked),
    );
    (target || this._root.querySelector(".close")).focus();
  }

  /** Floating: closes the panel; a call goes on (the launcher shows it is live). */
  close() {
    if (!this._launcher || !this._open) return;
    this._open = false;
    this._showPanel();
    this._launcher.focus();
  }

  _setState(state) {
    const changed = state !== this._state;
    this._state = state;
    this.setAttribute("data-state", state);
    if (this._status) {
      this._status.textContent = this._t[state] || state;
      this._status.setAttribute("data-state", state);
    }
    if (this._start) this._sync();
    if (changed) this._emit("state", { state });
  }

  _setMessage(text) {
    if (!this._message) return;
    this._message.textContent = text || "";
    this._message.hidden = !text;
  }

  _error(code, message) {
    this._emit("error", { code, message });
    return false;
  }

  /** Mutes (on=true, the default) or unmutes the microphone during a call. */
  mute(on = true) {
    if (!this._call) return false;
    const muted = !!on;
    this._call.setMuted(muted);
    this._mute.textContent = muted ? this._t.unmute : this._t.mute;
    this._mute.setAttribute("aria-pressed", String(muted));
    return true;
  }

  /** Ends the call (the server says goodbye first when it can). */
  end() {
    if (!this._call) return false;
    this._call.hangup();
    return true;
  }

  /** Sends a typed line during a call (a user turn, answered aloud); false, with an error
   *  event, when there is no call to take it. */
  sendText(text) {
    return (this._call && this._sendText && this._sendText(text)) || this._error("text", this._t.noText);
  }

  /** Starts a call as the start button does (call it from a click: browsers allow sound then).
   *  Returns false, with a voicewidget:error, when it cannot start. */
  start() {
    if (this._call) return false;
    const blocker = this._blocker();
    if (this._launcher && !this._open) this.open();
    if (blocker) return this._error(blocker, this._t[blocker]);
    if (this._accept && !this._accept.checked) {
      this._accept.focus();
      return this._error("terms", this._t.terms);
    }
    if (this._start.disabled) return this._error("preview", "Save the widget to call from the preview.");
    this._startCall();
    return true;
  }

  _startCall() {
    if (this._call || this._start.disabled) return;
    // Made inside the click so that the browser lets it play sound.
    let ctx = null;
    try {
      ctx = new (window.AudioContext || window.webkitAudioContext)({ latencyHint: "interactive" });
    } catch (_) {
      ctx = null;
    }
    const hadFocus = this._root.activeElement === this._start;
    this._stats = { ...FRESH_STATS };
    this._setMessage("");
    this._mute.textContent = this._t.mute;
    this._mute.setAttribute("aria-pressed", "false");
    // Stands in for the call while its modules load; hanging up meanwhile cancels the start.
    const placeholder = { muted: false, setMuted() {}, hangup() { placeholder.cancelled = true; } };
    this._call = placeholder;
    this._setState("connecting");
    if (hadFocus) this._end.focus();
    // The in-call half of the UI (live.js) comes with the call machinery, not before paint.
    const url = (name) => new URL(name, import.meta.url).href;
    Promise.all([import(url("live.js")), import(url("call.js"))]).then(
      ([live, mod]) => {
        Object.assign(VoiceWidget.prototype, live.LIVE);
        this._begin(mod, ctx, placeholder);
      },
      () => {
        if (ctx) ctx.close().catch(() => {});
        this._call = null;
        this._setState("error");
        this._setMessage(this._t.load);
        this._error("load", this._t.load);
      },
    );
  }

  onCallStats(stats) {
    Object.assign(this._stats, stats);
  }
}

export function define() {
  if (!customElements.get("voice-widget")) customElements.define("voice-widget", VoiceWidget);
}

/** Creates a configured <voice-widget> (not yet in the document). `attrs` (the snippet's
 *  data-* settings: audio, iceTimeoutMs, placement, position, variables, language) become
 *  the element's data-* attributes too. */
export function mount(opts) {
  if (window.performance && performance.mark) performance.mark("voice-widget:mount");
  define();
  const widget = document.createElement("voice-widget");
  const attrs = opts.attrs || {};
  for (const [name, value] of Object.entries(attrs)) {
    if (value != null) widget.setAttribute(`data-${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, value);
  }
  widget.configure({ ...opts, attrs });
  return widget;
}
