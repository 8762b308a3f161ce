// Starts Swagger UI on the admin API's own OpenAPI document (a file, not inline: the
// page's Content-Security-Policy runs no inline script).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#reference",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
