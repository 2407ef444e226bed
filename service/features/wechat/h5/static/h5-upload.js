/* H5 capture page, after the take: the upload (the recording kept in memory until it succeeds, so a network
   failure costs a tap, not a new video), then the polling until the decision. `flow` is the capture page's state
   (h5.js certify), `startCamera` the camera's (h5-capture.js): a refused video is recorded again. */
(function () {
  "use strict";
  var $ = H5.$, say = H5.say, speak = H5.speak, send = H5.send, errorCode = H5.errorCode;
  var TIMEOUT_CODES = H5.TIMEOUT_CODES;

  H5.upload = function (flow, startCamera) {
    // A silent connection (no progress, no answer) is given up after the page's data-upload-stall-s: the retry,
    // with the same recording and Idempotency-Key, is then offered (a retry never stores the video twice). Every
    // progress event counts as heard (a WebView that reports no length is not cut off while it sends), the answer
    // after the last byte gets twice as long (the server reads the video first), and the page's time in the
    // background does not count.
    function upload() {
      if (flow.uploading) { return; }
      flow.uploading = true;
      var s = flow.session(), recording = flow.recording;
      $("retry").hidden = true; $("upload-progress").hidden = false; $("upload-progress").value = 0;
      say("video-feedback", "正在上传视频…", true); speak("uploading");
      var fd = new FormData();
      fd.append("file", recording.blob, recording.type.indexOf("webm") >= 0 ? "video.webm" : "video.mp4");
      fd.append("nonce", s.challenge.nonce);
      var heard = Date.now(), sent = false, req = null, stallMs = (Number(flow.app.dataset.uploadStallS) || 60) * 1000;
      var watch = setInterval(function () {
        if (req && Date.now() - heard > (sent ? 2 * stallMs : stallMs)) { req.abort(); }
      }, 1000);
      function back() { if (!document.hidden) { heard = Date.now(); } }
      document.addEventListener("visibilitychange", back);
      function done() { clearInterval(watch); document.removeEventListener("visibilitychange", back); flow.uploading = false; }
      send("POST", "/api/v1/sessions/" + s.session_id + "/video", fd, {
        token: s.token, rid: recording.rid, opened: function (xhr) { req = xhr; },
        alive: function () { heard = Date.now(); },
        progress: function (p) { sent = p >= 1; $("upload-progress").value = Math.round(p * 100); }
      }).then(function () {
        done();
        flow.goStep("wait");
      }, function (xhr) {
        done();
        uploadFailed(xhr);
      });
    }
    // The same session already has its video (an earlier answer lost): on to the wait. Refused otherwise
    // (unreadable, too large): said, and "开始录制" again for a new recording, unless the session is over.
    var UPLOADED = { SESSION_STATE: 1, UPLOAD_CONFLICT: 1 };
    function uploadFailed(xhr) {
      var code = errorCode(xhr);
      if (xhr.status === 0 || xhr.status >= 500) {
        $("retry").hidden = false; say("video-feedback", "网络不稳定,视频已保留,请点击重新上传");
        return;
      }
      if (xhr.status === 429) {  // the upload rate limit (a few quick retries): the recording is good, kept
        $("retry").hidden = false; say("video-feedback", "操作过于频繁,视频已保留,请稍等一分钟后点击重新上传");
        return;
      }
      $("upload-progress").hidden = true;
      if (UPLOADED[code]) { return flow.goStep("wait"); }
      flow.stopped(xhr, "video-feedback", "视频无法提交,请重新录制");
      if (code !== "ATTEMPTS_EXCEEDED" && !TIMEOUT_CODES[code]) {
        flow.recording = null;
        if ($("video-fallback").hidden) { startCamera(); }
      }
    }
    $("retry").onclick = upload;

    // Every 1.5 s for the first 20 s (a decision usually comes by then), every 5 s to 2 min, then every 10 s: in a
    // campaign's busy morning thousands of phones wait together, and a fixed 1.5 s loaded the API for nothing.
    var polls = 0;
    function pollDelay(n) { return n < 14 ? 1500 : n < 34 ? 5000 : 10000; }
    function poll() {
      var s = flow.session();
      send("GET", "/api/v1/sessions/" + s.session_id, null, { token: s.token }).then(function (xhr) {
        var st = JSON.parse(xhr.responseText).state;
        if (st === "decided" || st === "failed" || st === "expired") { finish(); }
        else { setTimeout(poll, pollDelay(++polls)); }
      }, function (xhr) {
        // 401: the session token's lifetime is over (TOKEN_EXPIRED); the result page needs only the WeChat login.
        if (xhr.status === 401) { finish(); }
        else { setTimeout(poll, Math.max(3000, pollDelay(++polls))); }
      });
    }
    function finish() { sessionStorage.removeItem("h5current"); location.href = "/h5/result/" + flow.session().session_id; }

    return { upload: upload, poll: poll };
  };
})();
