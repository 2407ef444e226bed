// Starts ReDoc on the OpenAPI document named by the page (no inline script: the docs CSP forbids it).
"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.getAttribute("data-openapi-url"), { disableSearch: false, hideDownloadButton: false }, root);
});
