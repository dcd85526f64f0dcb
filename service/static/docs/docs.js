"use strict";
// Starts Swagger UI on /docs from a file, so that the page runs no inline script: its Content-Security-Policy
// allows scripts from this origin only. The page names the OpenAPI document's URL in data-spec-url.
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.specUrl,
    dom_id: "#swagger-container",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    // Local mode takes a POST only when it is declared JSON, a bodiless one (replay, reload) too.
    requestInterceptor: function (request) {
      var headers = request.headers || (request.headers = {});
      var declared = Object.keys(headers).some(function (name) {
        return name.toLowerCase() === "content-type";
      });
      if (request.method === "POST" && !declared) {
        headers["Content-Type"] = "application/json";
      }
      return request;
    },
  });
});
