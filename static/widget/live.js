// The in-call half of <voice-widget> (ui.js): imported with call.js when a call starts, so
// that none of it is loaded before the widget first paints. LIVE's methods are installed on
// VoiceWidget.prototype; call.js calls the on* ones.

import { CALL_TEXTS } from "./ui.js";
import { Orb } from "./orb.js";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = String(text);
  return e;
}

const TYPE_CSS =
  ".type{display:flex;gap:8px;margin:8px 0 0}.type input{flex:1;min-width:0;font:inherit;padding:7px 10px;border:1px solid var(--vw-border);border-radius:var(--vw-button-radius);background:var(--vw-bg);color:var(--vw-text)}.offer{margin:8px 0 0}";

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
    const textOnly = !!this._textOnly; // "Continue by typing": no microphone this call
    this._textOnly = false;
    if (this._offer) this._offer.remove();
    const call = new mod.Call({
      host: this._opts.host,
      widgetId: this._opts.widgetId,
      consent: cfg.terms_and_condition ? { accepted: true, terms_sha256: cfg.terms_sha256 } : null,
      ctx,
      ui: this,
      csrfToken: this._opts.csrfToken || "",
      variables: this._variables(),
      textOnly,
    });
    if (this._call !== placeholder) return;
    this._call = call;
    this._typeBox();
    if (this._orb) this._orb.stop();
    this._orb = new Orb(this, this._status); // the voice orb and the silent-microphone hint
    if (placeholder.cancelled) call.hangup(true);
    else call.start();
  },

  // ---- callbacks from call.js ----
  onCallState(state) {
    if (this._call) this._setState(state);
    if (this._call && this._orb) this._orb.setState(state);
  },

  onCallStarted(callId) {
    this._started = true;
    const textOnly = !!(this._call && this._call.textOnly);
    // No microphone to hear from: no silent-microphone hint in a text-only call.
    if (this._orb && !textOnly) this._orb.started();
    if (this._typeInput) {
      this._typeInput.disabled = this._typeSend.disabled = false;
      if (textOnly) {
        this._setMessage(this._t.textOnly);
        this._sync(); // no mute button without a microphone
        this._typeInput.focus();
      }
    }
    this._emit("call-start", { callId });
  },

  /** The text box under the transcript: a typed line (Enter or the send button) goes as a
   *  user turn; the server's echo puts it in the transcript as the visitor's. */
  _typeBox() {
    const t = this._t;
    if (this._typeForm) this._typeForm.remove();
    const form = (this._typeForm = el("form", "type"));
    const style = el("style");
    style.textContent = TYPE_CSS;
    const input = (this._typeInput = el("input"));
    input.type = "text";
    input.maxLength = 1000; // calls/protocol.py MAX_TYPED_CHARS
    input.autocomplete = "off";
    input.placeholder = t.typeLabel;
    input.setAttribute("aria-label", t.typeLabel);
    const send = (this._typeSend = el("button", "send", t.send));
    send.type = "submit";
    input.disabled = send.disabled = true; // until the call has started
    form.append(style, input, send);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (input.value.trim() && this.sendText(input.value)) input.value = "";
    });
    this._transcript.after(form);
  },

  /** The element's sendText(), once the call machinery is here. */
  _sendText(text) {
    const call = this._call;
    return !!(call && call.sendText && call.sendText(text == null ? "" : String(text)));
  },

  /** The server refused a message and the call goes on (a typed line sent too fast, say). */
  onRefused(message) {
    this._error("refused", message);
  },

  /** The microphone was refused or is missing: offer a text-only conversation instead. */
  _offerTyping(focus) {
    const offer = (this._offer = el("button", "offer secondary", this._t.typeInstead));
    offer.type = "button";
    offer.addEventListener("click", () => {
      offer.remove();
      this._textOnly = true;
      this._startCall();
    });
    this._message.after(offer);
    if (focus) offer.focus();
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
    const typing = !!hadFocus && hadFocus === this._typeInput;
    this._call = null;
    if (this._orb) this._orb.stop();
    this._orb = null;
    if (this._typeForm) this._typeForm.remove();
    this._typeForm = this._typeInput = null;
    const code = info.code;
    const text = (code && (CALL_TEXTS[this.language] || {})[code]) || message || "";
    this._setState(state);
    this._setMessage(text);
    if (state === "error") this._error(code || "call", text);
    if (this._started) {
      this._emit("call-end", { reason: info.reason || state, callId: this._stats.callId });
    }
    this._started = false;
    const refocus = hadFocus === this._end || hadFocus === this._mute || typing;
    if (state === "error" && (code === "mic" || code === "noMic")) this._offerTyping(refocus);
    else if (refocus) this._start.focus();
  },
};
