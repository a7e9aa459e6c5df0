// Starts Swagger UI on /docs. A file, not an inline script: the page's Content-Security-Policy
// allows scripts from this origin only. The spec's URL comes from the page (data-spec-url).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // Swagger UI would otherwise send the spec's URL to an online validator for its badge.
    validatorUrl: null,
  });
});
