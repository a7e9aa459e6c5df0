// mailflow dashboard: refresh the page's content every 30 s. The request carries the page's
// ETag (If-None-Match); a 304 changes nothing, a 200 replaces <main>. Nothing else runs here.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="mailflow-etag"]');
  if (!meta || !window.fetch || !window.DOMParser) { return; }
  var etag = meta.getAttribute("content");
  var busy = false;
  function refresh() {
    if (busy || document.hidden) { return; }
    var active = document.activeElement;
    // Someone is typing or moving through the page with the keyboard: keep their place.
    if (active && active.closest && active.closest("main, form")) { return; }
    busy = true;
    fetch(window.location.href, { headers: { "If-None-Match": etag }, cache: "no-store",
      credentials: "same-origin", redirect: "manual" })
      .then(function (response) {
        if (response.status !== 200) {
          if (response.type === "opaqueredirect") { window.location.reload(); } // signed out
          return null;
        }
        var next = response.headers.get("ETag");
        return response.text().then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelector("main");
          var main = document.querySelector("main");
          if (fresh && main) { main.replaceWith(document.importNode(fresh, true)); }
          if (next) { etag = next; }
        });
      })
      .catch(function () { /* offline for a moment: try again at the next tick */ })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, 30000);
}());
