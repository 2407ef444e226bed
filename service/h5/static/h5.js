/* H5 certification flow: consent → card (instant OCR feedback) → video (one action at a time) → result.
   The recording stays in memory until the upload succeeds, so a network failure costs a tap, not a new video. */
(function () {
  "use strict";
  var ACTION_S = 3;       // seconds per challenge action
  var COUNTDOWN_S = 3;    // before recording starts
  var ICONS = { turn_left: "⬅", turn_right: "➡", nod: "⬇", blink: "👁", open_mouth: "😮" };

  function $(id) { return document.getElementById(id); }
  function show(id) {
    var steps = document.querySelectorAll(".step");
    for (var i = 0; i < steps.length; i++) { steps[i].hidden = steps[i].id !== id; }
    window.scrollTo(0, 0);
  }
  function say(id, text, ok) { var el = $(id); el.textContent = text; el.className = ok ? "feedback ok" : "feedback"; }
  function rid() {
    var a = new Uint8Array(12); window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function errorText(xhr, fallback) {
    try { var e = JSON.parse(xhr.responseText).error; return (e && e.message) || fallback; } catch (_) { return fallback; }
  }
  function send(method, url, body, opts) {
    opts = opts || {};
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      if (opts.token) { xhr.setRequestHeader("Authorization", "Bearer " + opts.token); }
      if (opts.rid) { xhr.setRequestHeader("Idempotency-Key", opts.rid); }
      if (body && !(body instanceof FormData)) { xhr.setRequestHeader("Content-Type", "application/json"); body = JSON.stringify(body); }
      if (opts.progress && xhr.upload) {
        xhr.upload.onprogress = function (ev) { if (ev.lengthComputable) { opts.progress(ev.loaded / ev.total); } };
      }
      xhr.onload = function () { (xhr.status >= 200 && xhr.status < 300 ? resolve : reject)(xhr); };
      xhr.onerror = function () { reject(xhr); };
      xhr.send(body || null);
    });
  }

  var app = $("app");
  if (app) { certify(app); }
  var family = $("family-app");
  if (family && family.dataset.enabled === "yes") { familyPage(); }

  function familyPage() {
    var op = null;
    function go(mode) { return function (xhr) { sessionStorage.setItem("h5session", xhr.responseText); location.href = "/h5/certify?mode=" + mode; }; }
    function fail(xhr) { say("family-feedback", errorText(xhr, "操作失败,请稍后重试")); }
    function api(method, path, body) { return send(method, "/api/v1/proxy" + path, body, { token: op }); }
    var STATUS = { active: "已绑定", pending_consent: "待家人本人确认", ended: "已解绑" };
    function button(text, cls, fn) { var b = document.createElement("button"); b.className = "btn " + cls; b.textContent = text; b.onclick = fn; return b; }
    function load() {
      api("GET", "/operators/me").then(function (xhr) {
        var me = JSON.parse(xhr.responseText), list = $("bindings");
        list.textContent = "";
        if (!me.verified) { $("family-status").textContent = "请先完成本人实名核验。"; $("verify-first").hidden = false; return; }
        $("family-status").textContent = me.bindings.length ? "您绑定的家人:" : "您还没有绑定家人。";
        $("bind-form").hidden = false;
        me.bindings.filter(function (b) { return b.status !== "ended"; }).forEach(function (b) {
          var li = document.createElement("li"); li.className = "binding"; li.dataset.status = b.status;
          var t = document.createElement("p"); t.className = "big"; t.textContent = b.elder_name + "(" + b.elder_id_masked + ")· " + (STATUS[b.status] || b.status);
          li.appendChild(t);
          if (b.status === "active") {
            li.appendChild(button("为" + b.elder_name + "认证", "primary certify-elder", function () { api("POST", "/bindings/" + b.binding_id + "/sessions").then(go("proxy"), fail); }));
          } else if (b.status === "pending_consent") {
            li.appendChild(button("请" + b.elder_name + "本人录像确认", "primary consent-elder", function () { api("POST", "/bindings/" + b.binding_id + "/consent", { method: "live_video" }).then(go("consent"), fail); }));
          }
          li.appendChild(button("解除绑定", "unbind", function () { api("DELETE", "/bindings/" + b.binding_id).then(load, fail); }));
          list.appendChild(li);
        });
      }, fail);
    }
    $("op-verify") && ($("op-verify").onclick = function () {
      api("POST", "/operators/me/verification", { name: $("op-name").value.trim(), id_number: $("op-id").value.trim().toUpperCase(),
        template_consent: $("op-template").checked }).then(go("verify"), fail);
    });
    $("bind").onclick = function () {
      api("POST", "/bindings", { elder_name: $("elder-name").value.trim(), elder_id_number: $("elder-id").value.trim().toUpperCase(),
        relationship: $("relationship").value }).then(function () { say("family-feedback", "绑定成功", true); load(); }, fail);
    };
    send("POST", "/h5/api/operator").then(function (xhr) { op = JSON.parse(xhr.responseText).token; load(); }, fail);
  }

  function certify(app) {
    var prompts = JSON.parse(app.dataset.prompts || "{}");
    var s = null;            // {session_id, token, challenge}
    var recording = null;    // {blob, type, rid}: kept until uploaded

    $("consent-next").onclick = function () {
      if (!$("consent").checked) { return say("consent-feedback", "请先勾选同意认证须知"); }
      var body = { name: $("name").value.trim(), id_number: $("id-number").value.trim().toUpperCase(),
                   consent: true, template_consent: $("template-consent").checked };
      if (!body.name || body.id_number.length < 15) { return say("consent-feedback", "请填写姓名和身份证号"); }
      say("consent-feedback", "正在打开认证…", true);
      var url = app.dataset.sessionUrl || "/h5/api/sessions";
      send("POST", url, body).then(function (xhr) {
        s = JSON.parse(xhr.responseText); app.dataset.session = s.session_id; show("step-card"); setupWx();
      }, function (xhr) { say("consent-feedback", errorText(xhr, "暂时无法开始认证,请稍后重试")); });
    };
    // Family flows (operator verification, elder consent, proxy certification) arrive with their session.
    var handed = app.dataset.mode !== "self" && sessionStorage.getItem("h5session");
    if (handed) {
      s = JSON.parse(handed); sessionStorage.removeItem("h5session"); app.dataset.session = s.session_id;
      send("POST", "/h5/api/sessions/" + s.session_id + "/link", null, { token: s.token });
      show("step-card"); setupWx();
    }

    function cardDone(xhr) {
      say("card-feedback", "身份证已识别", true);
      show("step-video"); startCamera();
    }
    function cardFailed(xhr) { say("card-feedback", errorText(xhr, "上传失败,请检查网络后重拍")); }

    $("card-file").onchange = function () {
      var f = this.files && this.files[0]; if (!f) { return; }
      say("card-feedback", "正在识别,请稍候…", true);
      var fd = new FormData(); fd.append("file", f, f.name || "card.jpg");
      send("POST", "/h5/api/sessions/" + s.session_id + "/card", fd, { token: s.token, rid: rid() })
        .then(cardDone, cardFailed);
      this.value = "";
    };

    // Inside WeChat: JS-SDK chooseImage/uploadImage; our server fetches the photo by media_id.
    function setupWx() {
      if (!window.wx || !/MicroMessenger/i.test(navigator.userAgent)) { return; }
      send("GET", "/api/v1/wechat/jssdk-config?url=" + encodeURIComponent(location.href.split("#")[0])).then(function (xhr) {
        var cfg = JSON.parse(xhr.responseText); cfg.debug = false; window.wx.config(cfg);
        $("card-wx").hidden = false;
        $("card-wx").onclick = function () {
          window.wx.chooseImage({ count: 1, sizeType: ["original"], sourceType: ["camera"], success: function (res) {
            window.wx.uploadImage({ localId: res.localIds[0], isShowProgressTips: 1, success: function (up) {
              say("card-feedback", "正在识别,请稍候…", true);
              send("POST", "/h5/api/sessions/" + s.session_id + "/card-media", { media_id: up.serverId },
                   { token: s.token, rid: rid() }).then(cardDone, cardFailed);
            } });
          } });
        };
      });
    }

    var stream = null;
    function startCamera() {
      if (!navigator.mediaDevices || !window.MediaRecorder) { return fallback(); }
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false }).then(function (st) {
        stream = st; $("preview").srcObject = st;
      }, fallback);
    }
    function fallback() {
      $("record").hidden = true; $("video-fallback").hidden = false;
      $("action-text").textContent = "请录制视频,依次:" + s.challenge.actions.map(function (a) { return prompts[a] || a; }).join(",");
    }
    $("video-file").onchange = function () {
      var f = this.files && this.files[0]; if (!f) { return; }
      recording = { blob: f, type: f.type || "video/mp4", rid: rid() }; upload();
    };

    $("record").onclick = function () {
      $("record").hidden = true;
      var n = COUNTDOWN_S;
      $("countdown").textContent = n;
      var timer = setInterval(function () {
        n -= 1; $("countdown").textContent = n > 0 ? n : "";
        if (n <= 0) { clearInterval(timer); record(); }
      }, 1000);
    };

    function record() {
      var type = MediaRecorder.isTypeSupported("video/webm") ? "video/webm" : "video/mp4";
      var rec = new MediaRecorder(stream, { mimeType: type });
      var chunks = [];
      rec.ondataavailable = function (e) { if (e.data && e.data.size) { chunks.push(e.data); } };
      rec.onstop = function () {
        recording = { blob: new Blob(chunks, { type: type }), type: type, rid: rid() };
        $("action-text").textContent = "录制完成"; $("countdown").textContent = "";
        stream.getTracks().forEach(function (t) { t.stop(); });
        upload();
      };
      rec.start(500);
      var actions = s.challenge.actions, i = 0;
      function next() {
        if (i >= actions.length) { rec.stop(); return; }
        var a = actions[i];
        $("action-text").textContent = (ICONS[a] || "") + " " + (prompts[a] || a);
        var left = ACTION_S; $("countdown").textContent = left;
        var t = setInterval(function () {
          left -= 1; $("countdown").textContent = left > 0 ? left : "";
          if (left <= 0) { clearInterval(t); i += 1; next(); }
        }, 1000);
      }
      next();
    }

    function upload() {
      $("retry").hidden = true; $("upload-progress").hidden = false; $("upload-progress").value = 0;
      say("video-feedback", "正在上传视频…", true);
      var fd = new FormData();
      fd.append("file", recording.blob, recording.type.indexOf("webm") >= 0 ? "video.webm" : "video.mp4");
      fd.append("nonce", s.challenge.nonce);
      send("POST", "/api/v1/sessions/" + s.session_id + "/video", fd, {
        token: s.token, rid: recording.rid, progress: function (p) { $("upload-progress").value = Math.round(p * 100); }
      }).then(function () {
        show("step-wait"); poll();
      }, function (xhr) {
        if (xhr.status === 0 || xhr.status >= 500) {
          // Same recording, same Idempotency-Key: a retry never stores the video twice.
          $("retry").hidden = false; say("video-feedback", "网络不稳定,视频已保留,请点击重新上传");
        } else {
          say("video-feedback", errorText(xhr, "视频无法提交,请重新认证"));
        }
      });
    }
    $("retry").onclick = upload;

    function poll() {
      send("GET", "/api/v1/sessions/" + s.session_id, null, { token: s.token }).then(function (xhr) {
        var st = JSON.parse(xhr.responseText).state;
        if (st === "decided" || st === "failed" || st === "expired") { location.href = "/h5/result/" + s.session_id; }
        else { setTimeout(poll, 1500); }
      }, function (xhr) {
        // 401: the session token's lifetime is over (TOKEN_EXPIRED); the result page needs only the WeChat login.
        if (xhr.status === 401) { location.href = "/h5/result/" + s.session_id; }
        else { setTimeout(poll, 3000); }
      });
    }
  }
})();
