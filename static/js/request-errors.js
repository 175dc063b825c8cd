// A form sent with htmx that never reached the server, or that the server failed on (5xx),
// changes nothing on the page: a nurse could believe a critical value was recorded. Say so,
// in one banner at the top, until the next request. (400/403/409 come back as the form with
// its message and are swapped in: see the htmx-config meta tag in base.html.)
(function () {
  "use strict";
  function banner() { return document.getElementById("request-error"); }
  function show(text) {
    var el = banner();
    if (!el) { return; }
    el.textContent = text;
    el.hidden = false;
    el.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("htmx:beforeRequest", function () {
    var el = banner();
    if (el) { el.hidden = true; }
  });
  document.addEventListener("htmx:sendError", function () {
    show("The server could not be reached, so this may not have been saved. Check the " +
      "connection, reload the page to see what was recorded, and try again.");
  });
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status >= 500) {
      show("Not saved: the server could not complete this (error " + status + "). Try " +
        "again in a moment; if it keeps happening, tell the IT service desk.");
    }
  });
})();
