/* H5 family page (/h5/family): a relative's own verification, binding an elder, the elder's status, and each
   elder's certification or consent handed to the capture page (h5.js certify) as its session. */
(function () {
  "use strict";
  var $ = H5.$, say = H5.say, send = H5.send, speak = H5.speak, relogin = H5.relogin;
  var errorCode = H5.errorCode, errorText = H5.errorText;

  H5.familyPage = function (family) {
    var op = null;
    function go(mode, elder) {
      return function (xhr) {
        var handed = JSON.parse(xhr.responseText); if (elder) { handed.elder_name = elder; }
        sessionStorage.setItem("h5session", JSON.stringify(handed)); location.href = "/h5/certify?mode=" + mode;
      };
    }
    // A login run out (the WeChat cookie, or the operator token: one device at a time, OPERATOR_TOKEN_TTL_S) reloads
    // the page (H5.relogin), which lost what was typed. The bind and verification forms' text is kept in this tab
    // for the reload and filled back in once, then dropped: never in a URL or a log, the consent box not at all.
    var KEPT = "h5familyform", TYPED = ["elder-name", "elder-id", "relationship", "op-name", "op-id"];
    function keepTyped() {
      var kept = {}, any = false;
      TYPED.forEach(function (id) { var el = $(id); if (el && el.value) { kept[id] = el.value; any = true; } });
      if (any) { sessionStorage.setItem(KEPT, JSON.stringify(kept)); }
    }
    function restoreTyped() {
      var raw = sessionStorage.getItem(KEPT); if (!raw) { return; }
      sessionStorage.removeItem(KEPT);
      var kept = {}; try { kept = JSON.parse(raw) || {}; } catch (_) { return; }
      TYPED.forEach(function (id) { var el = $(id); if (el && typeof kept[id] === "string") { el.value = kept[id]; } });
    }
    restoreTyped();
    function fail(xhr) {
      if (relogin(xhr, "family-feedback")) { keepTyped(); return; }
      say("family-feedback", errorText(xhr, "操作失败,请稍后重试"));
    }
    function api(method, path, body) { return send(method, "/api/v1/proxy" + path, body, { token: op }); }
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
          // The elder's certificate copy behind this binding (family.py, by the WeChat login alone): certified, or
          // stopped here by the roster (transferred out) with a certification still valid (e.certificate).
          if (e.certificate) {
            var copy = document.createElement("a"); copy.className = "btn certificate-elder";
            copy.href = "/h5/family/bindings/" + encodeURIComponent(e.binding_id) + "/certificate.png";
            copy.textContent = "查看" + li.dataset.name + "的认证凭证(可保存、打印,带核验二维码)";
            li.insertBefore(copy, li.querySelector(".unbind-box"));
          }
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
        // The relative's own unbinding is not listed; a binding that lapsed (expired, revoked) is, with why and
        // "请重新绑定" (the server's words: status_zh) and no control (ended: the server's list of ended statuses).
        me.bindings.filter(function (b) { return b.status !== "ended"; }).forEach(function (b) {
          var li = document.createElement("li"); li.className = "binding"; li.dataset.status = b.status; li.dataset.binding = b.binding_id;
          li.dataset.name = b.elder_name;
          var t = document.createElement("p"); t.className = "big"; t.textContent = b.elder_name + "(" + b.elder_id_masked + ")· " + b.status_zh;
          li.appendChild(t);
          if (b.ended) { li.classList.add("ended"); list.appendChild(li); return; }
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
    // The WeChat's relative's account is an app's that is withdrawn: the server's words name the ways left, and
    // the bureau's phone is offered with them (operators.client_in_force).
    function refusedAccount(xhr) {
      fail(xhr);
      var phone = family.dataset.phone;
      if (errorCode(xhr) !== "PROXY_ACCOUNT_APP_WITHDRAWN" || !phone) { return; }
      $("family-status").textContent = "";
      var call = document.createElement("a"); call.className = "btn call-bureau"; call.href = "tel:" + phone;
      call.textContent = "拨打 " + phone;
      var box = $("family-feedback"); box.parentNode.insertBefore(call, box.nextSibling);
    }
    send("POST", "/h5/api/operator").then(function (xhr) { op = JSON.parse(xhr.responseText).token; load(); }, refusedAccount);
  };
})();
