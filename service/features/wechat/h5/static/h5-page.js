/* H5 pages, what every page shares (window.H5): the steps, feedback, the API requests and the login run out,
   the spoken prompts, elder mode and the control bar. Loaded before the page's own scripts (h5-family.js,
   h5-capture.js, h5-upload.js) and h5.js, which starts the page. */
(function () {
  "use strict";
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
  var lastSpoken = null, player = null, playing = 0;
  function muted() { return localStorage.getItem("h5muted") === "1"; }
  function zhVoice() {
    if (!window.speechSynthesis || !window.SpeechSynthesisUtterance) { return null; }
    var voices = window.speechSynthesis.getVoices();
    for (var i = 0; i < voices.length; i++) {
      if (/^zh[-_](CN|Hans)/i.test(voices[i].lang)) { return voices[i]; }
    }
    return null;
  }
  // One key, or several said one after the other (the result page: its heading, then each reason shown).
  function speak(keys) {
    keys = [].concat(keys).filter(function (k) { return VOICE[k]; });
    if (!keys.length) { return; }
    lastSpoken = keys;
    if (muted()) { return; }
    document.body.dataset.spoken = keys[0];
    var voice = zhVoice(), run = ++playing;
    if (voice) {
      window.speechSynthesis.cancel();
      keys.forEach(function (key) {  // queued by the browser, in order
        var u = new window.SpeechSynthesisUtterance(VOICE[key]); u.voice = voice; u.lang = "zh-CN"; u.rate = 0.9;
        window.speechSynthesis.speak(u);
      });
      return;
    }
    if (!player) { player = new Audio(); }
    var queue = keys.slice();
    function next() {
      if (run !== playing || !queue.length) { return; } // a later prompt (or mute) took over
      player.src = "/h5/audio/" + queue.shift();
      var played = player.play();
      if (played && played.catch) { played.catch(function () {}); } // autoplay refused: the replay button remains
    }
    player.onended = next;
    player.pause(); next();
  }
  function stopSpeaking() {
    playing++;
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

  window.H5 = {
    $: $, show: show, say: say, errorCode: errorCode, errorText: errorText, TIMEOUT_CODES: TIMEOUT_CODES, rid: rid,
    relogin: relogin, send: send, speak: speak, applyElder: applyElder, setElder: setElder,
    elderByDefault: elderByDefault, controlBar: controlBar
  };
})();
