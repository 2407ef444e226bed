/* H5 capture page, the video step: the camera, the live face guidance (guidance.js, advisory), and the take
   (the countdown, then one action at a time while recording). The recording goes to `flow.upload`
   (h5-upload.js); `flow` is the capture page's state (h5.js certify). */
(function () {
  "use strict";
  var $ = H5.$, say = H5.say, speak = H5.speak, rid = H5.rid;
  // Seconds per challenge action on a tap-started take (no live confirmation): the window opens as the prompt is
  // spoken and the clip is cut at the last one's end, so it holds the spoken prompt (up to 3.0 s, the page's
  // espeak-ng voice) and then the slowest real head turn of the development clips at half speed (2 x 1.0 s):
  // docs/liveness.md, "The time for each action" (tests/service/features/wechat/h5/test_action_window.py).
  var FIXED_ACTION_S = 5;
  var COUNTDOWN_S = 3;    // before recording starts
  var ICONS = { turn_left: "⬅", turn_right: "➡", nod: "⬇", blink: "👁", open_mouth: "😮" };

  H5.capture = function (flow) {
    var app = flow.app, prompts = flow.prompts;
    // The camera, and the take in progress (the countdown, then the recording) with every timer it set: a take
    // interrupted (a phone call or WeChat switched away, the camera taken by another app, the phone turned) is
    // thrown away whole, never uploaded: its frozen or black stretch would only be refused as a failed attempt.
    // `cameras` counts camera starts.
    var stream = null, recorderBits = null, clipMaxS = null, take = null, cameras = 0;
    var FROZEN_MS = 5000;    // a take's own clock stopped this long: the page was frozen (a call on iOS)
    var CAMERA_REFUSED = {
      NotAllowedError: "没有打开摄像头的权限。请点“重新打开摄像头”,在弹出的提示中选“允许”;没有提示时,请在手机“设置”里允许微信使用相机。",
      NotReadableError: "摄像头正被其他应用使用(如视频通话)。请关闭其他应用后,点“重新打开摄像头”。"
    };
    CAMERA_REFUSED.PermissionDeniedError = CAMERA_REFUSED.SecurityError = CAMERA_REFUSED.NotAllowedError;
    CAMERA_REFUSED.TrackStartError = CAMERA_REFUSED.AbortError = CAMERA_REFUSED.NotReadableError;
    var INTERRUPTED = {
      hidden: "录制被打断了(来电或切换到了其他应用),刚才的录像没有上传。请点“开始录制”重新录制。",
      camera: "摄像头被关闭或被其他应用占用,刚才的录像没有上传。请点“开始录制”重新录制。",
      rotated: "请竖着拿手机。刚才的录像没有上传,请竖着拿好后点“开始录制”重新录制。"
    };
    var CAMERA_LOST = "摄像头被关闭或被其他应用占用。请关闭其他应用后,点“开始录制”。";
    function stopCamera() {
      if (stream) { stream.getTracks().forEach(function (t) { t.onended = null; t.stop(); }); stream = null; }
    }
    function startCamera() {
      $("record").hidden = true; $("camera-retry").hidden = true;  // "开始录制" once there is a camera to record
      stopCamera(); started = false; lastHint = null; delete app.dataset.confirmed;
      if (guide) { guide.stop(); guide = null; }
      if (!canRecord()) { return fallback(); }
      // The recorder's bitrate the server publishes (guidance.json): a clip no larger than its analysis needs.
      if (window.H5Guidance) { window.H5Guidance.recorderBits().then(function (b) { recorderBits = b; }); }
      // The longest clip the server takes (guidance.json `capture.max_s`): the recording stops there.
      var limit = window.H5Guidance && window.H5Guidance.captureLimit;
      if (limit) { limit().then(function (s) { clipMaxS = s; }); }
      // The size the server's analysis uses (guidance.json), no more: less for the server to decode.
      var wanted = window.H5Guidance ? window.H5Guidance.constraints() : Promise.resolve({ facingMode: "user" });
      var mine = cameras = cameras + 1;
      wanted.then(function (video) {
        return navigator.mediaDevices.getUserMedia({ video: video, audio: false });
      }).then(function (st) {
        // Started again meanwhile: this one is not the page's (and must not stay on).
        if (mine !== cameras) { return st.getTracks().forEach(function (t) { t.stop(); }); }
        stream = st; $("preview").srcObject = st;
        st.getVideoTracks().forEach(function (t) { t.onended = function () { interrupted("camera"); }; });
        $("video-fallback").hidden = true; $("light-help").hidden = true; $("light-note").hidden = !lightOf();
        // The fallback's instruction (cannot record here) no longer holds: the step's own, as on entry.
        if (helpShown) { helpShown = false; $("action-text").textContent = FACE_IN_OVAL; }
        $("record").hidden = false; startGuide();
      }, function (err) { if (mine === cameras) { cameraRefused(err); } });
    }
    // Refused (no permission) or busy (another app has it): said, and tried again on a tap; the phone's own
    // camera app (the file input) stays offered. Anything else (no camera): the file input, as before.
    function cameraRefused(err) {
      fallback();
      var text = CAMERA_REFUSED[err && err.name];
      if (text) { say("video-feedback", text); $("camera-retry").hidden = false; }
    }
    $("camera-retry").onclick = function () {
      say("video-feedback", "", true); $("video-fallback").hidden = true; $("light-help").hidden = true; startCamera();
    };
    // Live face guidance (guidance.js, advisory): framing hints, then each action confirmed before the next.
    // Where it cannot run, guide stays null and the page records as before.
    var guide = null, started = false, lastHint = null, hintSpoken = 0;
    function startGuide() {
      if (!window.H5Guidance) { return; }
      app.dataset.guidance = "loading";
      var cam = stream;
      window.H5Guidance.start($("preview"), { hint: guideHint, cancelled: function () { return started || stream !== cam; }, steady: function () {
        if (!started && stream) { $("record").hidden = true; record(guide); }  // 1 s steady: recording starts by itself
      } }).then(function (g) { guide = g; app.dataset.guidance = g ? "on" : "off"; });
    }
    function guideHint(key, text, ok) {
      var oval = document.querySelector(".oval");
      if (oval) { oval.classList.toggle("ok", !!ok); }
      if (!key || started) { return; }
      app.dataset.hint = key;
      // A live region: the same words rewritten each frame would be read out again and again (screen readers).
      if ($("action-text").textContent !== text) { $("action-text").textContent = text; }
      // Spoken when it changes, at most every 2 s: a hint flickering between frames is not read out each time.
      if (key !== lastHint && Date.now() - hintSpoken > 2000) { speak("guide_" + key); hintSpoken = Date.now(); }
      lastHint = key;
    }
    // The screen-light challenge (h5-light.js): the session's sequence, or null; the painter of its colours.
    var lightOf = function () { return H5.lightOf(flow.session()); }, paint = H5.lightPainter(app);
    function lightShow(mine) {
      var l = lightOf();
      if (!l) { return; }
      var n = l.rgb.length, end = l.start_ms + l.step_ms * n;
      // The take is not cut before `record_after_ms` past the last colour (record: cut): the analysis reads that.
      mine.lightEnd = Date.now() + end + H5.lightAfter(l);
      // Each change timed from this one instant (no drift from chained timers); cleared with the take.
      for (var i = 0; i < n; i++) {
        timer(paint.bind(null, l, i), l.start_ms + i * l.step_ms);
      }
      timer(function () { paint(l, null); }, end);
    }
    // Entering the video step: the line (and its spoken prompt) asking for a bright screen and the face close,
    // only when the session carries a sequence; then the camera. Said after the step's own prompt (a tap before
    // it is said cuts it short, with the rest of the prompts: the line stays on screen).
    function enter() {
      var light = !!lightOf() && canRecord();  // the camera app (fallback) shows no colours: not asked for
      $("light-note").hidden = !light;
      if (light) { speak(["video", "light"]); }
      startCamera();
    }
    // A timer of the take in progress (cleared with it); repeating when `every`.
    function timer(fn, ms, every) {
      var id = (every ? setInterval : setTimeout)(fn, ms);
      if (take) { take.timers.push(id); }
      return id;
    }
    function portrait() {
      return window.matchMedia ? window.matchMedia("(orientation: portrait)").matches : window.innerHeight >= window.innerWidth;
    }
    function beginTake() {
      take = { timers: [], rec: null, portrait: portrait() }; started = true;
      say("video-feedback", "", true);
      var beat = Date.now();
      timer(function () {
        var now = Date.now();
        if (now - beat > FROZEN_MS) { interrupted("hidden"); } else { beat = now; }
      }, 500, true);
    }
    function endTake() {
      if (take) { take.timers.forEach(function (id) { clearInterval(id); }); }
      take = null;
      paint(null, null);  // the screen back to normal, whatever ended the take
    }
    function interrupted(reason) {
      var t = take;
      if (!t && reason !== "camera") { return; }  // between takes, only a lost camera matters
      endTake();
      if (t && t.rec && t.rec.state !== "inactive") { t.discarded = true; t.rec.stop(); }
      if (guide) { guide.stop(); guide = null; }
      stopCamera(); started = false;
      $("countdown").textContent = ""; $("record").hidden = true;
      $("action-text").textContent = reason === "rotated" ? "请竖着拿手机" : "请把脸放进椭圆框内";
      say("video-feedback", t ? INTERRUPTED[reason] : CAMERA_LOST);
      whenVisible(function () { startCamera(); speak("video"); });  // again once the person is back on the page
    }
    function whenVisible(fn) {
      if (!document.hidden) { return fn(); }
      document.addEventListener("visibilitychange", function back() {
        if (document.hidden) { return; }
        document.removeEventListener("visibilitychange", back); fn();
      });
    }
    document.addEventListener("visibilitychange", function () { if (document.hidden) { interrupted("hidden"); } });
    function turned() { if (take && portrait() !== take.portrait) { interrupted("rotated"); } }
    window.addEventListener("orientationchange", turned);
    window.addEventListener("resize", turned);

    function confirmLive(a, tries, onDone) {
      var mine = take, left = guide.config.action_s; $("countdown").textContent = left;
      var t = timer(function () {
        left -= 1; $("countdown").textContent = left > 0 ? left : "";
        if (left > 0) { return; }
        clearInterval(t); guide.unwatch();
        if (tries === 0) { speak("action_" + a); confirmLive(a, 1, onDone); } else { onDone(false); }  // re-prompted once
      }, 1000, true);
      guide.watch(a, function () {
        if (take !== mine) { return; }
        clearInterval(t); $("countdown").textContent = "";
        $("action-text").textContent = "✓ " + (prompts[a] || a); speak("guide_done");
        app.dataset.confirmed = (app.dataset.confirmed ? app.dataset.confirmed + "," : "") + a;
        timer(function () { onDone(true); }, guide.config.confirm.tail_s * 1000);  // the server sees it whole
      });
    }
    function canRecord() {
      return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
    }
    // The page cannot record (no recorder, the camera refused): the phone's own camera app (the file input), which
    // shows none of the screen's colours, so the light line goes. Under LIGHT_CHALLENGE enforce (`light.enforced`)
    // its video could only be rejected (LIGHT_NOT_SEEN, a counted failure, a retake that cannot work): the help
    // path instead, with why (NO_LIGHT); "重新打开摄像头" stays where offered. A home visit or the counter: with no
    // video there is nothing for a manual review to watch (assist.offered_kinds offers none). A relative's own
    // real-name check (mode verify) has no request form: another phone, or the counter (NO_LIGHT_VERIFY).
    var FACE_IN_OVAL = "请把脸放进椭圆框内";  // the step's instruction on entry (certify.html #action-text)
    var NO_LIGHT = "本手机无法在此页面录像(或未允许使用摄像头),不能显示认证所需的屏幕颜色,用手机相机录的视频无法通过认证。" +
      "请申请上门认证,或携带身份证到社保经办窗口办理。";
    var NO_LIGHT_VERIFY = "本手机无法在此页面录像(或未允许使用摄像头),不能显示核验所需的屏幕颜色,用手机相机录的视频无法通过核验。" +
      "请换一部能在此页面录像的手机重新核验,或携带身份证到社保经办窗口办理。";
    var helpShown = false;  // the fallback's instruction is on screen (a camera started later replaces it)
    function fallback() {
      endTake(); stopCamera();
      var l = lightOf(), enforced = !!(l && l.enforced), s = flow.session();
      $("light-note").hidden = true; helpShown = true;
      $("record").hidden = true; $("video-fallback").hidden = enforced; $("light-help").hidden = !enforced;
      if (enforced) {
        var link = $("light-apply"), call = $("light-call"), verify = app.dataset.mode === "verify";
        if (link && s.session_id) { link.href = "/h5/apply/" + encodeURIComponent(s.session_id); }
        var phone = verify && call && call.href ? "也可以拨打下方电话咨询。" : "";
        $("action-text").textContent = (verify ? NO_LIGHT_VERIFY : NO_LIGHT) + phone;
        return;
      }
      $("action-text").textContent = "请录制视频,依次:" + s.challenge.actions.map(function (a) { return prompts[a] || a; }).join(",");
    }
    $("video-fallback").onclick = function () { $("video-file").click(); };
    $("video-file").onchange = function () {
      var f = this.files && this.files[0]; if (!f || flow.uploading) { return; }
      flow.recording = { blob: f, type: f.type || "video/mp4", rid: rid() }; flow.upload();
      this.value = "";
    };

    $("record").onclick = function () {
      if (!stream || take) { return; }  // no camera yet (a slow phone), or a take already under way
      $("record").hidden = true; beginTake();
      if (guide) { guide.stop(); }  // a tap: the fixed timing, and the phone's CPU back to the recording
      var n = COUNTDOWN_S;
      $("countdown").textContent = n;
      var t = timer(function () {
        n -= 1; $("countdown").textContent = n > 0 ? n : "";
        if (n <= 0) { clearInterval(t); record(); }
      }, 1000, true);
    };

    // A recorder of this stream: the type asked for, else the browser's own (an old iOS refuses options).
    function recorder() {
      var type = MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported("video/webm") ? "video/webm" : "video/mp4";
      var opts = { mimeType: type };
      if (recorderBits) { opts.videoBitsPerSecond = recorderBits; }
      try { return new MediaRecorder(stream, opts); } catch (_) {
        try { return new MediaRecorder(stream); } catch (e) { return null; }
      }
    }
    function record(live) {
      if (!take) { beginTake(); }
      var mine = take, rec = stream && recorder();
      if (!rec) { return fallback(); }  // this browser cannot record here: the phone's camera app
      var chunks = [];
      mine.rec = rec;
      rec.ondataavailable = function (e) { if (e.data && e.data.size) { chunks.push(e.data); } };
      rec.onerror = function () { if (take === mine) { interrupted("camera"); } };
      rec.onstop = function () {
        if (mine.discarded) { return; }
        if (!mine.finished) { if (take === mine) { interrupted("camera"); } return; }  // stopped by itself
        var type = rec.mimeType || (chunks[0] && chunks[0].type) || "video/mp4";
        flow.recording = { blob: new Blob(chunks, { type: type }), type: type, rid: rid() };
        $("action-text").textContent = "录制完成"; $("countdown").textContent = "";
        stopCamera();
        flow.upload();
      };
      // The colours start from the recorder's own start (its first frame), not from this call or the tap.
      rec.onstart = function () { if (take === mine) { lightShow(mine); } };
      rec.start(500);
      // Live confirmation only after the page saw the face right (auto-start); a tap keeps the fixed timing.
      if (live) { live.recording(); app.dataset.recordStart = String(Date.now()); } else if (guide) { guide.stop(); }
      var actions = flow.session().challenge.actions, i = 0;
      function cut(force) {
        if (take !== mine) { return; }
        // A quick take (actions confirmed live) waits for the last colour: the server measures the whole sequence.
        var wait = mine.lightEnd ? mine.lightEnd - Date.now() : 0;
        if (!force && wait > 0) {
          $("action-text").textContent = "请继续看着屏幕"; $("countdown").textContent = "";
          return void timer(function () { cut(true); }, wait);
        }
        if (live) { live.stop(); }
        mine.finished = true; endTake(); rec.stop();
      }
      // Never longer than the server takes (VIDEO_TOO_LONG): a slow person's re-prompted, late-seen actions and
      // their tails could pass it (3 + 3 + 1 s each); the tail or the last wait is cut short instead.
      if (clipMaxS) { timer(function () { cut(true); }, clipMaxS * 1000); }
      function next() {
        if (take !== mine) { return; }
        if (i >= actions.length) { return cut(); }  // cut at the last action
        var a = actions[i];
        $("action-text").textContent = (ICONS[a] || "") + " " + (prompts[a] || a); speak("action_" + a);
        if (live && live.live(a)) { return confirmLive(a, 0, function () { i += 1; next(); }); }
        var left = FIXED_ACTION_S; $("countdown").textContent = left;
        var t = timer(function () {
          left -= 1; $("countdown").textContent = left > 0 ? left : "";
          if (left <= 0) { clearInterval(t); i += 1; next(); }
        }, 1000, true);
      }
      next();
    }

    return { startCamera: startCamera, enter: enter };
  };
})();
