/* Live face guidance of the capture page (service/features/wechat/h5/vendor.py): the face detector (framing)
   and, while recording, the server's face mesh (each action) run in the page with onnxruntime-web (WASM),
   advisory only; the server re-checks everything. Every rule and threshold
   comes from /h5/guidance.json (built from the server's constants); none is written here. Anything that fails
   (no WebAssembly, no SubtleCrypto, a missing bundle, a model whose sha256 differs) leaves the page in its
   ordinary flow: start() then resolves to null. */
(function () {
  "use strict";
  var CONFIG_URL = "/h5/guidance.json";

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var el = document.createElement("script");
      el.src = src; el.onload = resolve; el.onerror = function () { reject(new Error("load " + src)); };
      document.head.appendChild(el);
    });
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(url + " " + r.status); }
      return r.json();
    });
  }
  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  // The model bytes are checked against the sha256 the server published before any session is created.
  function verifiedModel(model) {
    return fetch(model.url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error("model " + r.status); }
      return r.arrayBuffer();
    }).then(function (buf) {
      return window.crypto.subtle.digest("SHA-256", buf).then(function (d) {
        if (hex(d) !== model.sha256) { throw new Error("model sha256 mismatch"); }
        return new Uint8Array(buf);
      });
    });
  }
  function supported() {
    return typeof WebAssembly === "object" && window.fetch && window.crypto && window.crypto.subtle &&
      window.Promise && document.createElement("canvas").getContext;
  }

  /* YuNet decoding, as models/detectors.py YuNetDetector.detect: score = sqrt(cls * obj), centre and landmarks
     offset from the anchor in stride units, size exp(·) * stride. Only the best face is kept. */
  function bestFace(out, model, w, h) {
    var best = null;
    model.strides.forEach(function (stride) {
      var cls = out["cls_" + stride].data, obj = out["obj_" + stride].data;
      var bbox = out["bbox_" + stride].data, kps = out["kps_" + stride].data, cols = w / stride;
      for (var i = 0; i < cls.length; i++) {
        var score = Math.sqrt(Math.max(0, Math.min(1, cls[i] * obj[i])));
        if (score < model.score || (best && score <= best.score)) { continue; }
        var ax = (i % cols) * stride, ay = Math.floor(i / cols) * stride;
        var cx = bbox[4 * i] * stride + ax, cy = bbox[4 * i + 1] * stride + ay;
        var bw = Math.exp(bbox[4 * i + 2]) * stride, bh = Math.exp(bbox[4 * i + 3]) * stride;
        var pts = [];
        for (var k = 0; k < 5; k++) { pts.push([kps[10 * i + 2 * k] * stride + ax, kps[10 * i + 2 * k + 1] * stride + ay]); }
        best = { score: score, x1: cx - bw / 2, y1: cy - bh / 2, w: bw, h: bh, cx: cx, cy: cy, kps: pts };
      }
    });
    return best;
  }
  // pipelines/liveness/signals.measure on the 468 mesh points (x, y, z; z on the x scale), same indices.
  function dist(p, a, b) { return Math.hypot(p[a][0] - p[b][0], p[a][1] - p[b][1]); }
  function ear(p, e) { var w = dist(p, e[0], e[3]); return w > 0 ? (dist(p, e[1], e[5]) + dist(p, e[2], e[4])) / (2 * w) : 0; }
  function tilt(p, a, b) {
    var d = [p[b][0] - p[a][0], p[b][1] - p[a][1], p[b][2] - p[a][2]];
    return Math.atan2(d[2], Math.hypot(d[0], d[1])) * 180 / Math.PI;
  }
  function measure(p, ix) {
    var mouthW = dist(p, ix.mouth_corners[0], ix.mouth_corners[1]);
    return { ear: (ear(p, ix.right_eye) + ear(p, ix.left_eye)) / 2,
             mar: mouthW > 0 ? dist(p, ix.mouth_inner[0], ix.mouth_inner[1]) / mouthW : 0,
             yaw: tilt(p, ix.cheeks[0], ix.cheeks[1]), pitch: tilt(p, ix.forehead_chin[0], ix.forehead_chin[1]) };
  }
  function percentile(xs, q) {
    var a = xs.slice().sort(function (x, y) { return x - y; });
    return a.length ? a[Math.min(a.length - 1, Math.round(q / 100 * (a.length - 1)))] : 0;
  }
  // Mean grey level (cv2's BGR2GRAY weights) of the inner 60 % of the box, as pipelines/liveness/capture.py.
  function faceLuma(px, w, h, f) {
    var x1 = Math.max(0, Math.floor(f.x1 + 0.2 * f.w)), y1 = Math.max(0, Math.floor(f.y1 + 0.2 * f.h));
    var x2 = Math.min(w, Math.floor(f.x1 + 0.8 * f.w)), y2 = Math.min(h, Math.floor(f.y1 + 0.8 * f.h));
    var sum = 0, n = 0;
    for (var y = y1; y < y2; y++) {
      for (var x = x1; x < x2; x++) { var o = 4 * (y * w + x); sum += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2]; n++; }
    }
    return n ? sum / n : 0;
  }
  // Laplacian variance (cv2.Laplacian's 4-neighbour kernel) of the grey crop, as the server's face quality.
  function laplacianVar(px, w, h) {
    var grey = new Float32Array(w * h), sum = 0, sq = 0, n = 0;
    for (var i = 0; i < w * h; i++) { grey[i] = 0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2]; }
    for (var y = 1; y < h - 1; y++) {
      for (var x = 1; x < w - 1; x++) {
        var o = y * w + x, v = grey[o - 1] + grey[o + 1] + grey[o - w] + grey[o + w] - 4 * grey[o];
        sum += v; sq += v * v; n++;
      }
    }
    return n ? sq / n - (sum / n) * (sum / n) : 0;
  }
  // What the person should do now, by the published rules (most basic first); "steady" when all is right.
  function hintFor(f, luma, fw, fh, pos, sharp) {
    if (!f) { return "face"; }
    if (Math.abs(f.cx / fw - 0.5) > pos.centre_tolerance || Math.abs(f.cy / fh - 0.5) > pos.centre_tolerance) { return "centre"; }
    if (Math.min(f.w, f.h) / Math.max(fw, fh) < pos.min_face_share) { return "closer"; }
    if (f.w / fw > pos.max_face_share) { return "farther"; }
    if (luma < pos.min_face_luma) { return "dark"; }
    if (sharp < pos.min_sharpness) { return "blurry"; }
    return "steady";
  }
  function median(xs) { return percentile(xs, 50); }

  function Guide(cfg, session, meshSession, video, ui) {
    var model = cfg.model, pos = cfg.position, inW = model.input[0], inH = model.input[1];
    var canvas = document.createElement("canvas"); canvas.width = inW; canvas.height = inH;
    var g = canvas.getContext("2d", { willReadFrequently: true });
    var input = new Float32Array(3 * inW * inH), self = this;
    var mesh = cfg.mesh, mSize = mesh.input, mCanvas = document.createElement("canvas");
    mCanvas.width = mSize; mCanvas.height = mSize;
    var mg = mCanvas.getContext("2d", { willReadFrequently: true }), mInput = new Float32Array(3 * mSize * mSize);
    // The face's inner part from the camera's own pixels (not the detector's smaller canvas), scaled to the crop.
    var sCanvas = document.createElement("canvas"), sW = pos.sharpness_crop[0], sH = pos.sharpness_crop[1];
    sCanvas.width = sW; sCanvas.height = sH;
    var sg = sCanvas.getContext("2d", { willReadFrequently: true });
    function sharpness(f, scale) {
      var m = (1 - pos.sharpness_inner) / 2;
      sg.drawImage(video, (f.x1 + m * f.w) / scale, (f.y1 + m * f.h) / scale, pos.sharpness_inner * f.w / scale,
                   pos.sharpness_inner * f.h / scale, 0, 0, sW, sH);
      return laplacianVar(sg.getImageData(0, 0, sW, sH).data, sW, sH);
    }
    var steadySince = null, last = null, phase = "framing", watching = null, samples = [], recStart = 0;
    this.timings = [];       // ms of the model per frame, and of the whole frame (bench/h5_guidance.py)
    this.frameTimings = [];
    this.meshTimings = [];
    this.config = cfg;

    function frame() {
      var vw = video.videoWidth, vh = video.videoHeight;
      if (!vw || !vh) { return Promise.resolve(null); }
      // Letterboxed top-left, as the server's detector does; coordinates below are in the drawn region.
      var scale = Math.min(inW / vw, inH / vh), fw = Math.round(vw * scale), fh = Math.round(vh * scale);
      g.fillStyle = "#000"; g.fillRect(0, 0, inW, inH); g.drawImage(video, 0, 0, fw, fh);
      var px = g.getImageData(0, 0, inW, inH).data, plane = inW * inH;
      for (var i = 0; i < plane; i++) {  // RGBA → planar BGR, raw 0-255 (the manifest's mean 0, std 1)
        input[i] = px[4 * i + 2]; input[plane + i] = px[4 * i + 1]; input[2 * plane + i] = px[4 * i];
      }
      var t0 = performance.now();
      return session.run({ input: new window.ort.Tensor("float32", input, [1, 3, inH, inW]) }).then(function (out) {
        self.timings.push(performance.now() - t0);
        var f = bestFace(out, model, inW, inH);
        return { f: f, fw: fw, fh: fh, scale: scale, luma: f ? faceLuma(px, inW, inH, f) : 0 };
      });
    }
    function framing(r, now) {
      var sharp = r.f ? sharpness(r.f, r.scale) : 0;
      self.lastSharpness = sharp;
      var hint = hintFor(r.f, r.luma, r.fw, r.fh, pos, sharp);
      var moved = r.f && last ? Math.hypot(r.f.cx - last.cx, r.f.cy - last.cy) / r.f.w : 1;
      last = r.f;
      if (hint !== "steady" || moved > pos.steady_move) { steadySince = null; }
      else if (steadySince === null) { steadySince = now; }
      ui.hint(hint, cfg.hints[hint], hint === "steady");
      if (steadySince !== null && now - steadySince >= pos.steady_s * 1000 && ui.steady) { ui.steady(); }
    }
    // The face mesh on a square crop of crop_scale × the box (models/landmarks.py), mapped back to video pixels;
    // as the server's tracking (pipelines/liveness/tracking.py), each frame's box is the previous mesh's extent
    // (box: [x1, y1, x2, y2] in video pixels), the detector's only to (re)acquire the face.
    var meshBox = null;
    function meshSignals(box) {
      var cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
      var side = Math.max(8, Math.max(box[2] - box[0], box[3] - box[1]) * mesh.crop_scale);
      mg.fillStyle = "#000"; mg.fillRect(0, 0, mSize, mSize);
      mg.drawImage(video, cx - side / 2, cy - side / 2, side, side, 0, 0, mSize, mSize);
      var px = mg.getImageData(0, 0, mSize, mSize).data, plane = mSize * mSize;
      for (var i = 0; i < plane; i++) {  // RGB in [0, 1] (the manifest's std 255)
        mInput[i] = px[4 * i] / 255; mInput[plane + i] = px[4 * i + 1] / 255; mInput[2 * plane + i] = px[4 * i + 2] / 255;
      }
      var feeds = {}; feeds[meshSession.inputNames[0]] = new window.ort.Tensor("float32", mInput, [1, 3, mSize, mSize]);
      var t0 = performance.now();
      return meshSession.run(feeds).then(function (out) {
        self.meshTimings.push(performance.now() - t0);
        var pts = null, logit = null, k = mSize / side;
        meshSession.outputNames.forEach(function (n) {
          if (out[n].data.length === mesh.points_output) { pts = out[n].data; } else if (out[n].data.length === 1) { logit = out[n].data[0]; }
        });
        if (!pts || 1 / (1 + Math.exp(-logit)) < mesh.min_presence) { meshBox = null; return null; }
        var p = [], ext = [Infinity, Infinity, -Infinity, -Infinity];
        for (var j = 0; j < pts.length / 3; j++) {
          var x = (pts[3 * j] - mSize / 2) / k + cx, y = (pts[3 * j + 1] - mSize / 2) / k + cy;
          p.push([x, y, pts[3 * j + 2] / k]);
          ext = [Math.min(ext[0], x), Math.min(ext[1], y), Math.max(ext[2], x), Math.max(ext[3], y)];
        }
        meshBox = ext;
        return measure(p, mesh.indices);
      });
    }
    // Resting value: the median over the first rest_s of the recording, as the server's _rest().
    function rest(signal) {
      var head = samples.filter(function (q) { return q.t <= recStart + cfg.rest_s * 1000; });
      if (head.length < 3) { head = samples.slice(0, 3); }
      return median(head.map(function (q) { return q[signal]; }));
    }
    // A blink as pipelines/liveness/actions.detect_blinks, on the frames seen so far: a run of frames with the
    // eye below threshold × its open level (the 80th percentile over window_s; the server centres that window,
    // the page can only look back), from its first to its last closed frame within max_s, followed by an open
    // one; the head near its resting pose at the run's deepest frame (the server's detect_events).
    function blinked(rule, sig) {
      var level = percentile(samples.filter(function (q) { return q.t >= sig.t - rule.window_s * 1000; })
        .map(function (q) { return q.ear; }), 80);
      var w = watching;
      if (sig.ear < rule.threshold * level) {
        if (w.closedAt === undefined || sig.ear < w.deepest.ear) { w.deepest = sig; }
        if (w.closedAt === undefined) { w.closedAt = sig.t; }
        w.lastClosed = sig.t;
        return false;
      }
      if (w.closedAt === undefined) { return false; }
      var d = w.deepest, short = w.lastClosed - w.closedAt <= rule.max_s * 1000;
      w.closedAt = undefined;
      return short && Math.abs(d.yaw - rest("yaw")) < rule.max_yaw && Math.abs(d.pitch - rest("pitch")) < rule.max_pitch;
    }
    function seen(action, sig) {
      var rule = cfg.actions[action], confirm = cfg.confirm;
      if (action === "blink") { return blinked(rule, sig); }
      var value = rule.sign * (sig[rule.signal] - (rule.relative ? rest(rule.signal) : 0));
      watching.run = value >= rule.threshold * confirm.margin ? (watching.run || 0) + 1 : 0;
      return watching.run >= confirm.frames;
    }
    function confirming(box, now) {
      return meshSignals(box).then(function (sig) {
        if (!sig) { return; }
        sig.t = now; samples.push(sig);
        if (watching && seen(watching.action, sig)) { var done = watching.done; watching = null; done(); }
      });
    }
    function loop() {
      if (phase === "stopped") { return; }
      var t0 = performance.now(), tracked = phase === "recording" && meshBox;
      (tracked ? confirming(meshBox, t0) : frame().then(function (r) {
        var now = performance.now();
        if (r && phase === "framing") { framing(r, now); }
        if (!r || !r.f || phase !== "recording") { return; }
        var f = r.f, s = r.scale;
        return confirming([f.x1 / s, f.y1 / s, (f.x1 + f.w) / s, (f.y1 + f.h) / s], now);
      })).then(function () {
        self.frameTimings.push(performance.now() - t0);
      }).catch(function () { /* one bad frame: the next one is tried */ }).then(function () {
        // At most the camera's rate (fps): the recording and the page need the rest of a phone's CPU.
        var wait = Math.max(0, 1000 / cfg.fps - (performance.now() - t0));
        if (phase !== "stopped") { setTimeout(loop, wait); }
      });
    }
    this.live = function (action) { return !!cfg.actions[action]; };
    this.recording = function () {
      phase = "recording"; samples = []; meshBox = null; recStart = performance.now(); ui.hint(null);
    };
    this.signals = function () { return samples; };  // what the page measured while recording (bench)
    this.watch = function (action, done) { watching = { action: action, done: done }; };
    this.unwatch = function () { watching = null; };
    this.stop = function () { phase = "stopped"; watching = null; };
    loop();
  }

  // The camera constraints the server publishes (the size its analysis uses, no more); a plain front camera
  // where guidance.json cannot be read. The promise is kept: start() reads the same JSON.
  var configPromise = null;
  function config() {
    if (!configPromise) { configPromise = getJSON(CONFIG_URL); }
    return configPromise;
  }
  function constraints() {
    var plain = { facingMode: "user" };
    if (!window.fetch) { return Promise.resolve(plain); }
    return config().then(function (c) {
      return { facingMode: "user", width: { ideal: c.capture.width }, height: { ideal: c.capture.height } };
    }, function () { return plain; });
  }
  // The recorder's bitrate (bits/s) the server's analysis was measured at (guidance.json, one server constant);
  // null where the JSON cannot be read: the browser's own choice, as before.
  function recorderBits() {
    if (!window.fetch) { return Promise.resolve(null); }
    return config().then(function (c) { return c.capture.video_bits_per_second || null; }, function () { return null; });
  }
  // The longest clip (s) the server accepts (guidance.json `capture.max_s`, VideoLimits.max_duration_s); null
  // where the JSON cannot be read: no limit of the page's own, as before.
  function captureLimit() {
    if (!window.fetch) { return Promise.resolve(null); }
    return config().then(function (c) { return c.capture.max_s || null; }, function () { return null; });
  }

  /* start(video, ui) → Promise of a Guide, or null (fallback). ui.hint(key, text, ok) shows a framing hint
     (null: framing is over); ui.steady() is called while the face has been right for steady_s;
     ui.cancelled() true stops the loading (the person started recording themselves). */
  // The runtime and the models' bytes, then their sessions: loaded once per page, so the camera started again
  // (a take interrupted, or refused by the server) does not load the script twice nor compile the models again.
  var loaded = null, created = null;
  function once(make, forget) {
    var p = make();
    p.catch(forget);
    return p;
  }
  function start(video, ui) {
    if (!supported()) { return Promise.resolve(null); }
    var cfg;
    return config().then(function (c) {
      cfg = c;
      if (!cfg.available) { throw new Error("guidance not available"); }
      loaded = loaded || once(function () {
        return loadScript(cfg.ort.script).then(function () {
          var ort = window.ort;
          ort.env.wasm.wasmPaths = cfg.ort.wasm_paths;
          ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which the page does not have
          ort.env.wasm.proxy = false;
          return Promise.all([verifiedModel(cfg.model), verifiedModel(cfg.mesh)]);
        });
      }, function () { loaded = null; });
      return loaded;
    }).then(function (models) {
      // A tap on "开始录制" while this loads: the fixed timing is used, so the WebAssembly compilation (the
      // heavy part, a second or more on a slow phone) is not started during the countdown and recording.
      if (ui.cancelled && ui.cancelled()) { throw new Error("recording started without guidance"); }
      var opts = { executionProviders: ["wasm"] };
      created = created || once(function () {
        return Promise.all(models.map(function (bytes) { return window.ort.InferenceSession.create(bytes, opts); }));
      }, function () { created = null; });
      return created;
    }).then(function (sessions) {
      if (ui.cancelled && ui.cancelled()) { throw new Error("recording started without guidance"); }
      window.H5Guidance.active = new Guide(cfg, sessions[0], sessions[1], video, ui);
      return window.H5Guidance.active;
    }).catch(function (e) {
      if (window.console) { window.console.warn("live guidance off:", e && e.message); }
      return null;
    });
  }
  window.H5Guidance = { start: start, constraints: constraints, recorderBits: recorderBits, captureLimit: captureLimit };
})();
