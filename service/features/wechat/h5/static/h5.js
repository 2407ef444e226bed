/* H5 certification flow: consent → card (instant OCR feedback) → video (one action at a time) → result.
   This script starts every H5 page and runs the capture page's steps; it needs h5-page.js (what every page
   shares), the capture page also h5-capture.js and h5-upload.js, the family page h5-family.js (loaded before it). */
(function () {
  "use strict";
  var $ = H5.$, show = H5.show, say = H5.say, send = H5.send, speak = H5.speak, rid = H5.rid;
  var errorCode = H5.errorCode, errorText = H5.errorText, relogin = H5.relogin, TIMEOUT_CODES = H5.TIMEOUT_CODES;

  H5.controlBar();
  H5.applyElder(localStorage.getItem("h5elder") === "1");
  H5.elderByDefault(document.body.dataset.elder === "yes");
  var resultBox = $("result");
  if (resultBox) {
    // The prompts the page's heading and then its reasons name (templates/result.html): what is said is shown.
    var voiced = resultBox.querySelectorAll("[data-voice]");
    if (voiced.length) { speak(Array.prototype.map.call(voiced, function (el) { return el.dataset.voice; })); }
  }

  var app = $("app");
  if (app) { certify(app); }
  if (sessionStorage.getItem("h5relogin")) {
    sessionStorage.removeItem("h5relogin");
    var firstFeedback = document.querySelector(".feedback");
    if (firstFeedback && firstFeedback.id) { say(firstFeedback.id, "页面停留时间过长,已重新进入,请从这一步继续。", true); }
  }
  var again = $("again");
  if (again) { again.onclick = function () { continueAfter($("result").dataset.session, "again-feedback"); }; }

  // A new session after a failed or timed-out one (card kept when it was not the problem): on to /h5/certify,
  // in the mode of the old one (self, or the family's verify / consent / proxy, the elder named by the server).
  var continuing = false;  // a second tap while the first is answered: one new session, not two
  function continueAfter(sessionId, feedback) {
    if (continuing) { return; }
    continuing = true;
    say(feedback, "正在准备…", true);
    send("POST", "/h5/api/sessions/" + sessionId + "/again").then(function (xhr) {
      sessionStorage.setItem("h5session", xhr.responseText); sessionStorage.removeItem("h5current");
      location.href = "/h5/certify?mode=" + (JSON.parse(xhr.responseText).mode || "self");
    }, function (xhr) {
      continuing = false;
      if (relogin(xhr, feedback)) { return; }
      if (errorCode(xhr) === "ATTEMPTS_EXCEEDED") { location.reload(); return; } // the page then shows the limit
      say(feedback, errorText(xhr, "暂时无法继续,请稍后重试"));
    });
  }
  var family = $("family-app");
  if (family && family.dataset.enabled === "yes") { H5.familyPage(family); }

  function certify(app) {
    var prompts = JSON.parse(app.dataset.prompts || "{}");
    var mode = app.dataset.mode;
    var s = null;            // {session_id, token, challenge, elder_name?}
    // What the video step (h5-capture.js) and the upload (h5-upload.js) share with these steps: the session in
    // progress, the recording ({blob, type, rid}: kept until uploaded), whether it is being sent.
    var flow = { app: app, prompts: prompts, session: function () { return s; }, recording: null, uploading: false,
                 goStep: goStep, stopped: stopped };
    var camera = H5.capture(flow), sending = H5.upload(flow, camera.startCamera);
    flow.upload = sending.upload;

    // The session in progress survives a reload: kept in this tab, its state read back from the server.
    function begin(session, step) {
      s = session; app.dataset.session = s.session_id;
      sessionStorage.setItem("h5current", JSON.stringify({ s: s, mode: mode }));
      nameElder(s.elder_name);
      if (typeof s.attempts_left === "number") {
        $("attempts").hidden = false; $("attempts").textContent = "今天还可以尝试 " + s.attempts_left + " 次。";
      }
      goStep(step);
    }
    function goStep(step) {
      if (step === "video") { show("step-video"); camera.enter(); }
      else if (step === "wait") { show("step-wait"); sending.poll(); }
      else { show("step-card"); setupWx(); }
    }
    function nameElder(name) {
      if (!name || mode === "self" || mode === "verify") { return; }
      $("who").hidden = false;
      $("who").textContent = mode === "consent" ? "请" + name + "本人确认" : "正在为" + name + "认证";
      Array.prototype.forEach.call(document.querySelectorAll(".elder-of"), function (el) { el.textContent = "为" + name + "认证:"; });
      Array.prototype.forEach.call(document.querySelectorAll(".elder-name"), function (el) { el.textContent = name; });
    }
    function stopped(xhr, feedback, fallback) {
      var code = errorCode(xhr);
      if (relogin(xhr, feedback)) { return; }
      if (code === "ATTEMPTS_EXCEEDED") { sessionStorage.removeItem("h5current"); applyFor(); show("step-limit"); return; }
      if (TIMEOUT_CODES[code]) { timedOut(); return; }
      say(feedback, errorText(xhr, fallback));
    }
    // "申请人工审核或上门认证" is for the person of the session in progress (none yet: the form asks who).
    function applyFor() {
      if (!s || !s.session_id) { return; }
      Array.prototype.forEach.call(document.querySelectorAll(".apply-link"), function (a) { a.href = "/h5/apply/" + s.session_id; });
    }
    function timedOut() {
      applyFor();
      show("step-timeout");
    }
    // Family sessions too (the same binding and elder: service/features/wechat/h5/recovery.py reopen_family).
    var resuming = false;  // one new session per tap answered (as for "是我本人")
    $("timeout-again").onclick = function () {
      if (resuming) { return; }
      resuming = true;
      say("timeout-feedback", "正在准备…", true);
      send("POST", "/h5/api/sessions/" + s.session_id + "/again").then(function (xhr) {
        resuming = false;
        var next = JSON.parse(xhr.responseText); begin(next, next.card_kept ? "video" : "card");
      }, function (xhr) { resuming = false; stopped(xhr, "timeout-feedback", "暂时无法继续,请稍后重试"); });
    };
    // A reload, or back/forward to this page: the same person, whose session in progress is restored.
    function reloaded() {
      var nav = window.performance && performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
      if (nav) { return nav.type === "reload" || nav.type === "back_forward"; }
      var legacy = window.performance && performance.navigation;
      return !!legacy && (legacy.type === 1 || legacy.type === 2);
    }
    function restore(saved) {
      s = saved.s;
      send("GET", "/api/v1/sessions/" + s.session_id, null, { token: s.token }).then(function (xhr) {
        var st = JSON.parse(xhr.responseText);
        if (st.state === "open" && Date.parse(st.challenge.expires_at) < Date.now()) { nameElder(s.elder_name); timedOut(); }
        else if (st.state === "open") { begin(s, st.uploads.id_card ? "video" : "card"); }
        else if (st.state === "queued" || st.state === "processing") { begin(s, "wait"); }
        else { sessionStorage.removeItem("h5current"); location.href = "/h5/result/" + s.session_id; }
      }, function (xhr) {
        if (xhr.status === 401 || xhr.status === 410) { nameElder(s.elder_name); timedOut(); }
        else { sessionStorage.removeItem("h5current"); }
      });
    }

    // Read, don't type (service/features/wechat/h5/cardfirst.py): consent → card photo → the name and number read from it,
    // confirmed ("是您本人吗?") → the session, opened with the confirmed values → the same photo to the session.
    var pendingCard = null;  // the photo read before the session existed; uploaded to it once opened
    $("consent").onchange = function () { if (this.checked) { say("consent-feedback", "", true); } };
    $("consent-next").onclick = function () {
      if (!$("consent").checked) { return say("consent-feedback", "请先勾选同意认证须知"); }
      show("step-card");
    };
    function spaced(n) { return n.length === 18 ? n.slice(0, 6) + " " + n.slice(6, 14) + " " + n.slice(14) : n; }
    function readCard(f) {
      say("card-feedback", "正在识别,请稍候…", true); speak("card_reading");
      var fd = new FormData(); fd.append("file", f, f.name || "card.jpg");
      send("POST", "/h5/api/card-read", fd).then(function (xhr) {
        pendingCard = f; confirmRead(JSON.parse(xhr.responseText));
      }, function (xhr) {
        if (xhr.status === 404 && errorCode(xhr) === "CARD_READ_DISABLED") { pendingCard = f; return confirmRead(null); }
        if (xhr.status === 422) { speak("card_retake"); }
        stopped(xhr, "card-feedback", "上传失败,请检查网络后重拍");
      });
    }
    function confirmRead(read) {
      say("card-feedback", "", true); say("confirm-feedback", "", true);
      $("name").value = (read && read.name) || ""; $("id-number").value = (read && read.id_number) || "";
      $("read-name").textContent = $("name").value || "—"; $("read-number").textContent = spaced($("id-number").value) || "—";
      var editing = !$("name").value || !$("id-number").value;  // nothing read (OCR off): typed after all
      $("confirm-edit-box").hidden = !editing; $("confirm-edit").hidden = editing; $("read-box").hidden = editing;
      show("step-confirm");
    }
    $("confirm-edit").onclick = function () {
      // The fields replace the large read: one version of the name and number on screen, the one sent.
      $("confirm-edit-box").hidden = false; $("confirm-edit").hidden = true; $("read-box").hidden = true; $("name").focus();
    };
    // One session per confirmation: a second tap while the first is answered (an elder tapping again at
    // "正在核对…") opened a second session, and the card went to one while the page went on with the other.
    var opening = false;
    $("confirm-yes").onclick = function () {
      if (opening) { return; }
      var body = { name: $("name").value.trim(), id_number: $("id-number").value.trim().toUpperCase(),
                   consent: true, template_consent: $("template-consent").checked };
      if (!body.name || body.id_number.length < 15) { return say("confirm-feedback", "请填写姓名和身份证号"); }
      say("confirm-feedback", "正在核对…", true);
      opening = true;
      send("POST", "/h5/api/sessions", body).then(function (xhr) {
        opening = false;
        var opened = JSON.parse(xhr.responseText);
        if (opened.elder_mode && localStorage.getItem("h5elder") === null) { H5.setElder(true); }
        begin(opened, "card");
        if (pendingCard) { uploadCard(pendingCard); pendingCard = null; }
      }, function (xhr) { opening = false; stopped(xhr, "confirm-feedback", "暂时无法开始认证,请稍后重试"); });
    };
    // Family flows (operator verification, elder consent, proxy certification) and a continued self session
    // arrive with their session; otherwise a reload finds the session in progress in this tab.
    var handed = sessionStorage.getItem("h5session");
    var saved = JSON.parse(sessionStorage.getItem("h5current") || "null");
    if (handed) {
      sessionStorage.removeItem("h5session");
      var h = JSON.parse(handed);
      if (mode !== "self") { send("POST", "/h5/api/sessions/" + h.session_id + "/link", null, { token: h.token }); }
      begin(h, h.card_kept ? "video" : "card");
    } else if (saved && saved.mode === mode && saved.s && reloaded()) {
      restore(saved);
    } else {
      // Reached afresh (from the start or family page): a new person may be holding the phone (a helper
      // certifying several neighbours), so the previous person's session is not theirs to continue.
      sessionStorage.removeItem("h5current");
      speak("consent");
    }

    function cardDone() {
      say("card-feedback", "身份证已识别", true);
      goStep("video");
    }
    function cardFailed(xhr) {
      if (xhr.status === 422) { speak("card_retake"); }
      stopped(xhr, "card-feedback", "上传失败,请检查网络后重拍");
    }

    function uploadCard(f) {
      say("card-feedback", "正在识别,请稍候…", true); speak("card_reading");
      var fd = new FormData(); fd.append("file", f, f.name || "card.jpg");
      send("POST", "/h5/api/sessions/" + s.session_id + "/card", fd, { token: s.token, rid: rid() })
        .then(cardDone, cardFailed);
    }
    $("card-button").onclick = function () { $("card-file").click(); };
    $("card-file").onchange = function () {
      var f = this.files && this.files[0]; if (!f) { return; }
      if (s) { uploadCard(f); } else { readCard(f); }  // no session yet: read first, confirm, then open it
      this.value = "";
    };

    // Inside WeChat: JS-SDK chooseImage/uploadImage; our server fetches the photo by media_id.
    function setupWx() {
      if (!s || !window.wx || !/MicroMessenger/i.test(navigator.userAgent)) { return; }
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
  }
})();
