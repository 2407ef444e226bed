/* H5 certification flow: consent → card (instant OCR feedback) → video (one action at a time) → result.
   The recording stays in memory until the upload succeeds, so a network failure costs a tap, not a new video. */
(function () {
  "use strict";
  var ACTION_S = 3;       // seconds per challenge action
  var COUNTDOWN_S = 3;    // before recording starts
  var ICONS = { turn_left: "⬅", turn_right: "➡", nod: "⬇", blink: "👁", open_mouth: "😮" };

  function $(id) { return document.getElementById(id); }
  var STEP_VOICE = { "step-consent": "consent", "step-card": "card", "step-confirm": "confirm", "step-video": "video",
                     "step-wait": "wait", "step-timeout": "timeout", "step-limit": "limit" };
  function show(id) {
    var steps = document.querySelectorAll(".step");
    for (var i = 0; i < steps.length; i++) { steps[i].hidden = steps[i].id !== id; }
    window.scrollTo(0, 0);
    speak(STEP_VOICE[id]);
  }
  function say(id, text, ok) {
    var el = $(id); el.textContent = text; el.className = ok ? "feedback ok" : "feedback";
    // Errors sit above the action and are announced (role=alert); on a small screen they must be visible too.
    if (!ok && el.scrollIntoView) { el.scrollIntoView({ block: "center" }); }
  }
  function errorCode(xhr) {
    try { var e = JSON.parse(xhr.responseText).error; return (e && e.code) || ""; } catch (_) { return ""; }
  }
  var TIMEOUT_CODES = { SESSION_EXPIRED: 1, NONCE_EXPIRED: 1, TOKEN_EXPIRED: 1 };
  function rid() {
    var a = new Uint8Array(12); window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function errorText(xhr, fallback) {
    try { var e = JSON.parse(xhr.responseText).error; return (e && e.message) || fallback; } catch (_) { return fallback; }
  }
  // The pages' WeChat login (a 2-h cookie) ran out while the page sat open: the API's 401 UNAUTHORIZED said
  // "未授权的访问" and left no way on. The page is entered again instead (the server takes it through WeChat's
  // login and back) and says so there.
  function relogin(xhr, feedback) {
    if (xhr.status !== 401 || errorCode(xhr) !== "UNAUTHORIZED") { return false; }
    say(feedback, "页面停留时间过长,正在重新进入…", true);
    sessionStorage.setItem("h5relogin", "1");
    setTimeout(function () { location.reload(); }, 1500);
    return true;
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
        xhr.upload.onprogress = function (ev) {
          if (opts.alive) { opts.alive(); }
          if (ev.lengthComputable) { opts.progress(ev.loaded / ev.total); }
        };
      }
      xhr.onload = function () { (xhr.status >= 200 && xhr.status < 300 ? resolve : reject)(xhr); };
      xhr.onerror = xhr.onabort = xhr.ontimeout = function () { reject(xhr); };  // status 0: the network
      if (opts.opened) { opts.opened(xhr); }
      xhr.send(body || null);
    });
  }

  // Spoken prompts (service/features/wechat/h5/voice.py): the browser's zh-CN voice where it has one, else the project's audio
  // file of the prompt; muted by the visible button (remembered), replayed by the other. Text stays on screen.
  var VOICE = JSON.parse(document.body.dataset.voice || "{}");
  var lastSpoken = null, player = null;
  function muted() { return localStorage.getItem("h5muted") === "1"; }
  function zhVoice() {
    if (!window.speechSynthesis || !window.SpeechSynthesisUtterance) { return null; }
    var voices = window.speechSynthesis.getVoices();
    for (var i = 0; i < voices.length; i++) {
      if (/^zh[-_](CN|Hans)/i.test(voices[i].lang)) { return voices[i]; }
    }
    return null;
  }
  function speak(key) {
    if (!VOICE[key]) { return; }
    lastSpoken = key;
    if (muted()) { return; }
    document.body.dataset.spoken = key;
    var voice = zhVoice();
    if (voice) {
      window.speechSynthesis.cancel();
      var u = new window.SpeechSynthesisUtterance(VOICE[key]); u.voice = voice; u.lang = "zh-CN"; u.rate = 0.9;
      window.speechSynthesis.speak(u);
      return;
    }
    if (!player) { player = new Audio(); }
    player.pause(); player.src = "/h5/audio/" + key;
    var played = player.play();
    if (played && played.catch) { played.catch(function () {}); } // autoplay refused: the replay button remains
  }
  function stopSpeaking() {
    if (window.speechSynthesis) { window.speechSynthesis.cancel(); }
    if (player) { player.pause(); }
  }
  // Elder mode: bigger type, fewer words; on by default once the roster says 60 or more, remembered here.
  function applyElder(on) {
    document.body.classList.toggle("elder", on);
    var t = $("elder-toggle"); if (t) { t.setAttribute("aria-pressed", on ? "true" : "false"); }
  }
  function setElder(on) { applyElder(on); localStorage.setItem("h5elder", on ? "1" : "0"); }
  // The roster's default (the server's data-elder, a session's elder_mode) until the person chooses.
  function elderByDefault(on) { if (localStorage.getItem("h5elder") === null) { applyElder(on); } }
  function controlBar() {
    var bar = document.createElement("div"); bar.className = "controls";
    function add(id, text, fn) {
      var b = document.createElement("button"); b.type = "button"; b.id = id; b.className = "ctl"; b.textContent = text;
      b.onclick = fn; bar.appendChild(b); return b;
    }
    var mute = add("voice-mute", "", function () {
      localStorage.setItem("h5muted", muted() ? "0" : "1"); label();
      if (muted()) { stopSpeaking(); } else if (lastSpoken) { speak(lastSpoken); }
    });
    function label() {
      mute.textContent = muted() ? "打开声音" : "关闭声音";
      mute.setAttribute("aria-pressed", muted() ? "true" : "false");
    }
    label();
    add("voice-replay", "再听一遍", function () { if (lastSpoken) { localStorage.setItem("h5muted", "0"); label(); speak(lastSpoken); } });
    add("elder-toggle", "大字", function () { setElder(!document.body.classList.contains("elder")); });
    var header = document.querySelector("header.bar");
    header.parentNode.insertBefore(bar, header.nextSibling);
  }
  controlBar();
  applyElder(localStorage.getItem("h5elder") === "1");
  elderByDefault(document.body.dataset.elder === "yes");
  var resultBox = $("result");
  if (resultBox) {
    var d = resultBox.dataset.decision, st0 = resultBox.dataset.state;
    speak(d || (st0 === "queued" || st0 === "processing" ? "wait" : "reject"));
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
  if (family && family.dataset.enabled === "yes") { familyPage(); }

  function familyPage() {
    var op = null;
    function go(mode, elder) {
      return function (xhr) {
        var handed = JSON.parse(xhr.responseText); if (elder) { handed.elder_name = elder; }
        sessionStorage.setItem("h5session", JSON.stringify(handed)); location.href = "/h5/certify?mode=" + mode;
      };
    }
    function fail(xhr) { if (!relogin(xhr, "family-feedback")) { say("family-feedback", errorText(xhr, "操作失败,请稍后重试")); } }
    function api(method, path, body) { return send(method, "/api/v1/proxy" + path, body, { token: op }); }
    var STATUS = { active: "已绑定", pending_consent: "待家人本人确认", ended: "已解绑" };
    function button(text, cls, fn) { var b = document.createElement("button"); b.type = "button"; b.className = "btn " + cls; b.textContent = text; b.onclick = fn; return b; }
    // Unbinding ends the relative's right to certify: a separate, smaller control that asks first.
    function unbindControl(b) {
      var box = document.createElement("div"); box.className = "unbind-box";
      var ask = button("解除绑定…", "link unbind", null), confirmBox = document.createElement("div");
      confirmBox.hidden = true; confirmBox.className = "confirm";
      var q = document.createElement("p"); q.className = "big"; q.setAttribute("role", "alert");
      q.textContent = "确定解除与" + b.elder_name + "的绑定吗?解除后不能再为其代办认证。";
      confirmBox.appendChild(q);
      confirmBox.appendChild(button("确定解除", "danger unbind-confirm", function () { api("DELETE", "/bindings/" + b.binding_id).then(load, fail); }));
      confirmBox.appendChild(button("取消", "unbind-cancel", function () { confirmBox.hidden = true; ask.hidden = false; ask.focus(); }));
      ask.onclick = function () { ask.hidden = true; confirmBox.hidden = false; confirmBox.querySelector(".unbind-cancel").focus(); };
      box.appendChild(ask); box.appendChild(confirmBox);
      return box;
    }
    // Certified until / due / in review, under each bound elder's name.
    function elderStatus() {
      send("GET", "/h5/api/family/elders", null, { token: op }).then(function (xhr) {
        JSON.parse(xhr.responseText).elders.forEach(function (e) {
          var li = document.querySelector('li.binding[data-binding="' + e.binding_id + '"]'); if (!li) { return; }
          var p = document.createElement("p"); p.className = "elder-status " + e.state; p.dataset.state = e.state;
          p.textContent = e.text; li.insertBefore(p, li.children[1] || null);
          if (e.state === "limit" || e.state === "locked") { offerHelp(li, ""); }
        });
      });
    }
    // No more tries today (or the binding locked): instead of the certify button, the assist request for this
    // elder (service/features/wechat/h5/requests.py, /h5/apply/binding/…) and the bureau's phone.
    var HELP_CODES = { ATTEMPTS_EXCEEDED: 1, PROXY_BINDING_LOCKED: 1 };
    function offerHelp(li, text) {
      var box = li.querySelector(".limit-box");
      if (!box) {
        box = document.createElement("div"); box.className = "limit-box";
        var why = document.createElement("p"); why.className = "big limit-text"; why.setAttribute("role", "alert"); box.appendChild(why);
        var apply = document.createElement("a"); apply.className = "btn primary apply-elder";
        apply.href = "/h5/apply/binding/" + encodeURIComponent(li.dataset.binding);
        apply.textContent = "为" + li.dataset.name + "申请人工审核或上门认证"; box.appendChild(apply);
        var phone = family.dataset.phone;
        if (phone) {
          var also = document.createElement("p"); also.className = "big"; also.textContent = "也可以拨打经办机构电话:"; box.appendChild(also);
          var call = document.createElement("a"); call.className = "btn call-bureau"; call.href = "tel:" + phone;
          call.textContent = "拨打 " + phone; box.appendChild(call);
        }
        li.insertBefore(box, li.querySelector(".unbind-box"));
      }
      var main = li.querySelector(".certify-elder, .consent-elder"); if (main) { main.hidden = true; }
      var why2 = box.querySelector(".limit-text"); why2.textContent = text; why2.hidden = !text;
      return box;
    }
    function refusedFor(li) {
      return function (xhr) {
        if (!HELP_CODES[errorCode(xhr)]) { return fail(xhr); }
        var box = offerHelp(li, errorText(xhr, "今日认证次数已达上限"));
        if (box.scrollIntoView) { box.scrollIntoView({ block: "center" }); }
      };
    }
    function load() {
      api("GET", "/operators/me").then(function (xhr) {
        var me = JSON.parse(xhr.responseText), list = $("bindings");
        list.textContent = "";
        if (!me.verified) { $("family-status").textContent = "请先完成本人实名核验。"; $("verify-first").hidden = false; return; }
        $("family-status").textContent = me.bindings.length ? "您绑定的家人:" : "您还没有绑定家人。";
        $("bind-form").hidden = false;
        me.bindings.filter(function (b) { return b.status !== "ended"; }).forEach(function (b) {
          var li = document.createElement("li"); li.className = "binding"; li.dataset.status = b.status; li.dataset.binding = b.binding_id;
          li.dataset.name = b.elder_name;
          var t = document.createElement("p"); t.className = "big"; t.textContent = b.elder_name + "(" + b.elder_id_masked + ")· " + (STATUS[b.status] || b.status);
          li.appendChild(t);
          if (b.status === "active") {
            li.appendChild(button("为" + b.elder_name + "认证", "primary certify-elder", function () { api("POST", "/bindings/" + b.binding_id + "/sessions").then(go("proxy", b.elder_name), refusedFor(li)); }));
          } else if (b.status === "pending_consent") {
            li.appendChild(button("请" + b.elder_name + "本人录像确认", "primary consent-elder", function () { api("POST", "/bindings/" + b.binding_id + "/consent", { method: "live_video" }).then(go("consent", b.elder_name), refusedFor(li)); }));
          }
          li.appendChild(unbindControl(b));
          list.appendChild(li);
          if (b.locked) { offerHelp(li, ""); }
        });
        elderStatus();
      }, fail);
    }
    // Read, don't type: a card photo fills the name and number (card-read); the binding and the verification
    // still check them against the roster, and the verification's own card step against the card.
    function prefillFromCard(button, file, nameId, idId) {
      if (!$(button)) { return; }
      $(button).onclick = function () { $(file).click(); };
      $(file).onchange = function () {
        var f = this.files && this.files[0]; if (!f) { return; }
        this.value = ""; say("family-feedback", "正在识别,请稍候…", true); speak("card_reading");
        var fd = new FormData(); fd.append("file", f, f.name || "card.jpg");
        send("POST", "/h5/api/card-read", fd).then(function (xhr) {
          var r = JSON.parse(xhr.responseText); $(nameId).value = r.name || ""; $(idId).value = r.id_number || "";
          say("family-feedback", "已识别,请核对姓名和身份证号", true); speak("confirm");
        }, function (xhr) { if (xhr.status === 422) { speak("card_retake"); } fail(xhr); });
      };
    }
    prefillFromCard("op-card-button", "op-card-file", "op-name", "op-id");
    prefillFromCard("elder-card-button", "elder-card-file", "elder-name", "elder-id");
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
    var mode = app.dataset.mode;
    var s = null;            // {session_id, token, challenge, elder_name?}
    var recording = null;    // {blob, type, rid}: kept until uploaded

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
      if (step === "video") { show("step-video"); startCamera(); }
      else if (step === "wait") { show("step-wait"); poll(); }
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
        if (opened.elder_mode && localStorage.getItem("h5elder") === null) { setElder(true); }
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

    // The camera, and the take in progress (the countdown, then the recording) with every timer it set: a take
    // interrupted (a phone call or WeChat switched away, the camera taken by another app, the phone turned) is
    // thrown away whole, never uploaded: its frozen or black stretch would only be refused as a failed attempt.
    // `cameras` counts camera starts; not set here: the first start (begin(), above) runs before this line does.
    var stream = null, recorderBits = null, take = null, uploading = false, cameras;
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
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) { return fallback(); }
      // The recorder's bitrate the server publishes (guidance.json): a clip no larger than its analysis needs.
      if (window.H5Guidance) { window.H5Guidance.recorderBits().then(function (b) { recorderBits = b; }); }
      // The size the server's analysis uses (guidance.json), no more: less for the server to decode.
      var wanted = window.H5Guidance ? window.H5Guidance.constraints() : Promise.resolve({ facingMode: "user" });
      var mine = cameras = (cameras || 0) + 1;
      wanted.then(function (video) {
        return navigator.mediaDevices.getUserMedia({ video: video, audio: false });
      }).then(function (st) {
        // Started again meanwhile: this one is not the page's (and must not stay on).
        if (mine !== cameras) { return st.getTracks().forEach(function (t) { t.stop(); }); }
        stream = st; $("preview").srcObject = st;
        st.getVideoTracks().forEach(function (t) { t.onended = function () { interrupted("camera"); }; });
        $("video-fallback").hidden = true; $("record").hidden = false; startGuide();
      }, function (err) { if (mine === cameras) { cameraRefused(err); } });
    }
    // Refused (no permission) or busy (another app has it): said, and tried again on a tap; the phone's own
    // camera app (the file input) stays offered. Anything else (no camera): the file input, as before.
    function cameraRefused(err) {
      fallback();
      var text = CAMERA_REFUSED[err && err.name];
      if (text) { say("video-feedback", text); $("camera-retry").hidden = false; }
    }
    $("camera-retry").onclick = function () { say("video-feedback", "", true); $("video-fallback").hidden = true; startCamera(); };
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
    function fallback() {
      endTake(); stopCamera();
      $("record").hidden = true; $("video-fallback").hidden = false;
      $("action-text").textContent = "请录制视频,依次:" + s.challenge.actions.map(function (a) { return prompts[a] || a; }).join(",");
    }
    $("video-fallback").onclick = function () { $("video-file").click(); };
    $("video-file").onchange = function () {
      var f = this.files && this.files[0]; if (!f || uploading) { return; }
      recording = { blob: f, type: f.type || "video/mp4", rid: rid() }; upload();
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
        recording = { blob: new Blob(chunks, { type: type }), type: type, rid: rid() };
        $("action-text").textContent = "录制完成"; $("countdown").textContent = "";
        stopCamera();
        upload();
      };
      rec.start(500);
      // Live confirmation only after the page saw the face right (auto-start); a tap keeps the fixed timing.
      if (live) { live.recording(); app.dataset.recordStart = String(Date.now()); } else if (guide) { guide.stop(); }
      var actions = s.challenge.actions, i = 0;
      function next() {
        if (take !== mine) { return; }
        if (i >= actions.length) {  // cut at the last action
          if (live) { live.stop(); }
          mine.finished = true; endTake(); rec.stop(); return;
        }
        var a = actions[i];
        $("action-text").textContent = (ICONS[a] || "") + " " + (prompts[a] || a); speak("action_" + a);
        if (live && live.live(a)) { return confirmLive(a, 0, function () { i += 1; next(); }); }
        var left = ACTION_S; $("countdown").textContent = left;
        var t = timer(function () {
          left -= 1; $("countdown").textContent = left > 0 ? left : "";
          if (left <= 0) { clearInterval(t); i += 1; next(); }
        }, 1000, true);
      }
      next();
    }

    // A silent connection (no progress, no answer) is given up after the page's data-upload-stall-s: the retry,
    // with the same recording and Idempotency-Key, is then offered (a retry never stores the video twice). Every
    // progress event counts as heard (a WebView that reports no length is not cut off while it sends), the answer
    // after the last byte gets twice as long (the server reads the video first), and the page's time in the
    // background does not count.
    function upload() {
      if (uploading) { return; }
      uploading = true;
      $("retry").hidden = true; $("upload-progress").hidden = false; $("upload-progress").value = 0;
      say("video-feedback", "正在上传视频…", true); speak("uploading");
      var fd = new FormData();
      fd.append("file", recording.blob, recording.type.indexOf("webm") >= 0 ? "video.webm" : "video.mp4");
      fd.append("nonce", s.challenge.nonce);
      var heard = Date.now(), sent = false, req = null, stallMs = (Number(app.dataset.uploadStallS) || 60) * 1000;
      var watch = setInterval(function () {
        if (req && Date.now() - heard > (sent ? 2 * stallMs : stallMs)) { req.abort(); }
      }, 1000);
      function back() { if (!document.hidden) { heard = Date.now(); } }
      document.addEventListener("visibilitychange", back);
      function done() { clearInterval(watch); document.removeEventListener("visibilitychange", back); uploading = false; }
      send("POST", "/api/v1/sessions/" + s.session_id + "/video", fd, {
        token: s.token, rid: recording.rid, opened: function (xhr) { req = xhr; },
        alive: function () { heard = Date.now(); },
        progress: function (p) { sent = p >= 1; $("upload-progress").value = Math.round(p * 100); }
      }).then(function () {
        done();
        goStep("wait");
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
      if (UPLOADED[code]) { return goStep("wait"); }
      stopped(xhr, "video-feedback", "视频无法提交,请重新录制");
      if (code !== "ATTEMPTS_EXCEEDED" && !TIMEOUT_CODES[code]) {
        recording = null;
        if ($("video-fallback").hidden) { startCamera(); }
      }
    }
    $("retry").onclick = upload;

    // Every 1.5 s for the first 20 s (a decision usually comes by then), every 5 s to 2 min, then every 10 s: in a
    // campaign's busy morning thousands of phones wait together, and a fixed 1.5 s loaded the API for nothing.
    var polls = 0;
    function pollDelay(n) { return n < 14 ? 1500 : n < 34 ? 5000 : 10000; }
    function poll() {
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
    function finish() { sessionStorage.removeItem("h5current"); location.href = "/h5/result/" + s.session_id; }
  }
})();
