// Starts Swagger UI on the OpenAPI document named by the page (no inline script: the docs CSP forbids it).
"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // the default validator is an outside server: nothing leaves the bureau's network
    presets: [SwaggerUIBundle.presets.apis], // the top bar (standalone preset) is not in this bundle: not needed
    layout: "BaseLayout",
  });
});
