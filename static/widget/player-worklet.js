// Assistant audio: PCM16 mono chunks (16 kHz unless told otherwise) in a small jitter buffer,
// resampled to the context's rate by linear interpolation. Playback of a burst starts once
// ~80 ms are buffered (or the burst stops growing); {type:"flush"} drops everything at once.
// Reports {played (source samples heard so far), rms (of the last ~50 ms output), flushed},
// and {start: contextTime} the moment audible output (|sample| > AUDIBLE) begins after at
// least 300 ms of silence or nothing (one per assistant utterance, for debug.replyStarts).
// "vw-meter" (WebRTC) listens to the remote stream with the same onset rule and reports
// {playedMs (ms of audio with energy), rms} plus the same {start} messages.
const PREBUFFER_S = 0.08;
const MAX_WAIT_S = 0.06;
const REPORT_S = 0.05;
const AUDIBLE = 0.01;
const GAP_S = 0.3;
const HANGOVER_S = 0.05;

/** Finds where sound starts after >= GAP_S of silence; `quiet` counts silent samples. */
class Onsets {
  constructor() {
    this.gap = Math.round(GAP_S * sampleRate);
    this.quiet = this.gap;
  }

  /** Index of the onset in out[0..len) or -1; at most one fits in a render quantum. */
  scan(out, len) {
    let at = -1;
    for (let i = 0; i < len; i++) {
      const v = out[i];
      if (v > AUDIBLE || v < -AUDIBLE) {
        if (at < 0 && this.quiet >= this.gap) at = i;
        this.quiet = 0;
      } else if (this.quiet < this.gap) {
        this.quiet++;
      }
    }
    return at;
  }
}

class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.setRate(16000);
    this.queue = [];
    this.head = 0; // read index into queue[0]
    this.buffered = 0; // source samples queued
    this.playing = false;
    this.waited = 0;
    this.cur = 0;
    this.next = 0;
    this.frac = 0;
    this.primed = false;
    this.played = 0;
    this.sumSq = 0;
    this.count = 0;
    this.onsets = new Onsets();
    this.port.onmessage = (ev) => this.onMessage(ev.data);
  }

  setRate(rate) {
    this.rate = rate;
    this.step = rate / sampleRate;
    this.prebuffer = Math.round(rate * PREBUFFER_S);
  }

  onMessage(d) {
    if (d instanceof ArrayBuffer) {
      const pcm = new Int16Array(d);
      const f = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) f[i] = pcm[i] / 32768;
      this.queue.push(f);
      this.buffered += f.length;
    } else if (d && d.type === "flush") {
      this.queue = [];
      this.head = 0;
      this.buffered = 0;
      this.playing = false;
      this.primed = false;
      this.waited = 0;
      this.report(true);
    } else if (d && d.type === "rate" && d.rate > 0) {
      this.setRate(d.rate);
    }
  }

  pop() {
    while (this.queue.length) {
      const chunk = this.queue[0];
      if (this.head < chunk.length) {
        this.buffered--;
        this.played++;
        return chunk[this.head++];
      }
      this.queue.shift();
      this.head = 0;
    }
    return null;
  }

  report(flushed) {
    const rms = this.count ? Math.sqrt(this.sumSq / this.count) : 0;
    this.port.postMessage({ played: this.played, rms, flushed: !!flushed });
    this.sumSq = 0;
    this.count = 0;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    const len = out.length;
    if (!this.playing && this.buffered > 0) {
      this.waited += len;
      if (this.buffered >= this.prebuffer || this.waited >= MAX_WAIT_S * sampleRate) {
        this.playing = true;
        this.waited = 0;
      }
    }
    let i = 0;
    if (this.playing) {
      if (!this.primed) {
        const a = this.pop();
        const b = this.pop();
        this.cur = a === null ? 0 : a;
        this.next = b === null ? this.cur : b;
        this.frac = 0;
        this.primed = true;
      }
      for (; i < len; i++) {
        const v = this.cur + (this.next - this.cur) * this.frac;
        out[i] = v;
        this.sumSq += v * v;
        this.frac += this.step;
        while (this.frac >= 1) {
          this.frac -= 1;
          this.cur = this.next;
          const s = this.pop();
          if (s === null) {
            // Underrun: the burst is over (or the network is late); wait for more.
            this.playing = false;
            this.primed = false;
            break;
          }
          this.next = s;
        }
        if (!this.playing) {
          i++;
          break;
        }
      }
    }
    for (; i < len; i++) out[i] = 0;
    const at = this.onsets.scan(out, len);
    if (at >= 0) this.port.postMessage({ start: currentTime + at / sampleRate });
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    this.count += len;
    if (this.count >= REPORT_S * sampleRate) this.report(false);
    return true;
  }
}

registerProcessor("vw-player", PlayerProcessor);

class MeterProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.onsets = new Onsets();
    this.hangover = Math.round(HANGOVER_S * sampleRate);
    this.energetic = 0; // samples of input that had energy (within HANGOVER_S of a sound)
    this.sumSq = 0;
    this.count = 0;
    this.buf = new Float32Array(128);
  }

  process(inputs) {
    const input = inputs[0];
    const len = input && input[0] ? input[0].length : 128;
    if (this.buf.length < len) this.buf = new Float32Array(len);
    const x = this.buf;
    if (input && input.length) {
      const chans = input.length;
      for (let i = 0; i < len; i++) {
        let s = 0;
        for (let c = 0; c < chans; c++) s += input[c][i];
        x[i] = s / chans;
        this.sumSq += x[i] * x[i];
      }
    } else {
      x.fill(0);
    }
    const at = this.onsets.scan(x, len);
    if (at >= 0) this.port.postMessage({ start: currentTime + at / sampleRate });
    if (this.onsets.quiet < this.hangover) this.energetic += len;
    this.count += len;
    if (this.count >= REPORT_S * sampleRate) {
      const rms = Math.sqrt(this.sumSq / this.count);
      this.port.postMessage({ playedMs: Math.round((this.energetic * 1000) / sampleRate), rms });
      this.sumSq = 0;
      this.count = 0;
    }
    return true;
  }
}

registerProcessor("vw-meter", MeterProcessor);
