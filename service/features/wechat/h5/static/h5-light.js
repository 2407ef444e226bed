/* H5 capture page, the screen-light challenge (docs/wechat.md, "The screen-light challenge"): while recording, the
   screen around the oval takes each colour of the session's sequence in turn, `start_ms` after the recorder's own
   start event and `step_ms` each (h5-capture.js times them): the server looks for the face's response at those
   times of the video, so neither the tap nor the countdown may shift them. Nothing changes for a session without
   one. Loaded before h5-capture.js. */
(function () {
  "use strict";
  var $ = H5.$;
  var MIN_STEP_MS = 400;  // at most 2.5 changes a second (WCAG 2.3.1: three flashes); the server issues 800 ms

  // The session's sequence, or null: a sequence the page cannot show within the flash limit is not shown at all.
  H5.lightOf = function (session) {
    var l = session && session.challenge && session.challenge.light;
    if (!l || !l.rgb || !l.rgb.length || !(l.step_ms >= MIN_STEP_MS) || !(l.start_ms >= 0)) { return null; }
    return l;
  };

  // How long the take goes on after the last colour (the server's `record_after_ms`, at most 3 s): a camera shows a
  // colour a little after the screen does, and the analysis reads the frames after the sequence as well.
  H5.lightAfter = function (l) { return Math.min(Math.max(Number(l.record_after_ms) || 0, 0), 3000); };

  // paint(l, i) shows colour i of sequence l on the layer and around the oval; paint(l, null) takes it away.
  H5.lightPainter = function (app) {
    var lit = false;  // a colour is on screen
    return function paint(l, i) {
      var layer = $("light"), oval = document.querySelector(".oval");
      if (!layer) { return; }
      if (i === null) {
        if (!lit) { return; }
        lit = false; layer.hidden = true; layer.style.backgroundColor = "";
        if (oval) { oval.style.boxShadow = ""; }
        document.body.classList.remove("lit"); delete app.dataset.light;
        return;
      }
      var colour = "rgb(" + l.rgb[i].join(", ") + ")";
      lit = true; layer.style.backgroundColor = colour; layer.hidden = false;
      if (oval) { oval.style.boxShadow = "0 0 0 999px " + colour; }  // the stage around the face, lit too
      document.body.classList.add("lit"); app.dataset.light = (l.colours && l.colours[i]) || String(i);
    };
  };
})();
