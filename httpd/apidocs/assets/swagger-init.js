// Starts Swagger UI on the service's /openapi.json. It lives in its own file
// (not inline in /docs) so that the page's Content-Security-Policy can allow
// scripts from 'self' only.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
  deepLinking: true,
  displayRequestDuration: true,
  // null: never send the spec to validator.swagger.io (offline, private).
  validatorUrl: null,
});
