// The in-call half of <voice-widget> (ui.js): imported with call.js when a call starts, so
// that none of it is loaded before the widget first paints. LIVE's methods are installed on
// VoiceWidget.prototype; call.js calls the on* ones.

import { CALL_TEXTS } from "./ui.js";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = String(text);
  return e;
}

export const LIVE = {
  /** The snippet's data-variables (a JSON object) for create-call, or null (an error event
   *  when it is not an object). The server checks names and sizes (400 naming `variables`). */
  _variables() {
    const raw = this._opts.attrs.variables;
    if (!raw) return null;
    try {
      const v = JSON.parse(raw);
      if (v && typeof v === "object" && !Array.isArray(v)) return v;
    } catch (_) {
      /* reported below */
    }
    this._error("variables", this._t.variables);
    return null;
  },

  _begin(mod, ctx, placeholder) {
    const cfg = this._opts.config || {};
    this._transcript.textContent = "";
    this._transcript.hidden = true;
    this._said.textContent = "";
    this._partials = {};
    this._cut = false;
    this._started = false;
    const call = new mod.Call({
      host: this._opts.host,
      widgetId: this._opts.widgetId,
      consent: cfg.terms_and_condition ? { accepted: true, terms_sha256: cfg.terms_sha256 } : null,
      ctx,
      ui: this,
      csrfToken: this._opts.csrfToken || "",
      variables: this._variables(),
    });
    if (this._call !== placeholder) return;
    this._call = call;
    if (placeholder.cancelled) call.hangup(true);
    else call.start();
  },

  // ---- callbacks from call.js ----
  onCallState(state) {
    if (this._call) this._setState(state);
  },

  onCallStarted(callId) {
    this._started = true;
    this._emit("call-start", { callId });
  },

  /** The server cut the assistant short: its next final line is what was heard. */
  onInterruption() {
    this._cut = true;
  },

  /** A transcript line: an empty one is never shown (a partial one that ends empty goes
   *  away); an interrupted one says so; the newest stays in view unless the visitor scrolled
   *  up; each final line is added once to the live region a screen reader announces. */
  onTranscript(role, text, final, interrupted) {
    const who = role === "user" ? "user" : "assistant";
    const t = this._t;
    text = typeof text === "string" ? text.trim() : "";
    if (who === "assistant" && final && this._cut) {
      interrupted = true;
      this._cut = false;
    }
    const box = this._transcript;
    let li = this._partials[who];
    if (final) delete this._partials[who];
    if (!text) {
      if (li) li.remove();
      box.hidden = !box.childElementCount;
      return;
    }
    const atEnd = box.hidden || box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    if (!li) {
      li = el("li", `turn ${who}`);
      li.append(el("span", "who", who === "user" ? t.you : t.assistant), el("span", "text"));
      box.append(li);
    }
    li.children[1].textContent = text;
    li.classList.toggle("partial", !final);
    if (final) {
      if (interrupted) {
        li.classList.add("interrupted");
        li.append(el("span", "flag", t.interrupted));
      }
      const line = `${li.children[0].textContent} ${text}${interrupted ? ` ${t.interrupted}` : ""}`;
      this._said.append(el("p", null, line));
      while (this._said.childElementCount > 3) this._said.firstChild.remove();
    } else {
      this._partials[who] = li;
    }
    box.hidden = false;
    if (atEnd) box.scrollTop = box.scrollHeight;
    this._emit("message", { role: who, text, final: !!final, interrupted: !!interrupted });
  },

  /** info: {reason (call.ended's, "hangup" or "error"), code (the key of call.js TEXT)}. */
  onCallFinished(state, message, info = {}) {
    const hadFocus = this._root.activeElement;
    this._call = null;
    const code = info.code;
    const text = (code && (CALL_TEXTS[this.language] || {})[code]) || message || "";
    this._setState(state);
    this._setMessage(text);
    if (state === "error") this._error(code || "call", text);
    if (this._started) {
      this._emit("call-end", { reason: info.reason || state, callId: this._stats.callId });
    }
    this._started = false;
    if (hadFocus === this._end || hadFocus === this._mute) this._start.focus();
  },
};
