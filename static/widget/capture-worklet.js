// Microphone capture: the context's rate (44.1 or 48 kHz, never assumed) -> 16 kHz PCM16 mono,
// posted to the main thread as 20 ms frames (320 samples = 640 bytes, transferable ArrayBuffers).
// A 4th-order low-pass (two biquads, 7 kHz) runs before linear interpolation to limit aliasing.
const OUT_RATE = 16000;
const FRAME = 320;
// Butterworth 4th order = two biquads with these Q values.
const QS = [0.5411961, 1.3065630];

function lowpass(fc, rate, q) {
  const w = (2 * Math.PI * fc) / rate;
  const alpha = Math.sin(w) / (2 * q);
  const cos = Math.cos(w);
  const a0 = 1 + alpha;
  return {
    b0: (1 - cos) / 2 / a0, b1: (1 - cos) / a0, b2: (1 - cos) / 2 / a0,
    a1: (-2 * cos) / a0, a2: (1 - alpha) / a0,
    x1: 0, x2: 0, y1: 0, y2: 0,
  };
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / OUT_RATE;
    this.filters = this.ratio > 1.05 ? QS.map((q) => lowpass(7000, sampleRate, q)) : [];
    this.pos = 0; // position of the next output sample, in input samples of the current block
    this.last = 0; // the previous block's last (filtered) sample, index -1
    this.buf = new Float32Array(128);
    this.frame = new Int16Array(FRAME);
    this.n = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0 || !input[0]) return true;
    const len = input[0].length;
    if (this.buf.length < len) this.buf = new Float32Array(len);
    const x = this.buf;
    const chans = input.length;
    for (let i = 0; i < len; i++) {
      let s = 0;
      for (let c = 0; c < chans; c++) s += input[c][i];
      x[i] = s / chans;
    }
    for (const f of this.filters) {
      for (let i = 0; i < len; i++) {
        const v = x[i];
        const y = f.b0 * v + f.b1 * f.x1 + f.b2 * f.x2 - f.a1 * f.y1 - f.a2 * f.y2;
        f.x2 = f.x1; f.x1 = v; f.y2 = f.y1; f.y1 = y;
        x[i] = y;
      }
    }
    let pos = this.pos;
    while (pos < len - 1) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = i < 0 ? this.last : x[i];
      const b = x[i + 1];
      let v = a + (b - a) * frac;
      v = v > 1 ? 1 : v < -1 ? -1 : v;
      this.frame[this.n++] = v < 0 ? v * 0x8000 : v * 0x7fff;
      if (this.n === FRAME) {
        const out = this.frame.buffer;
        this.port.postMessage(out, [out]);
        this.frame = new Int16Array(FRAME);
        this.n = 0;
      }
      pos += this.ratio;
    }
    this.pos = pos - len;
    this.last = x[len - 1];
    return true;
  }
}

registerProcessor("vw-capture", CaptureProcessor);
