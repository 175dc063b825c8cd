// A text box with a length limit says how much of it is used: the browser stops typing at
// maxlength without a word, and a reviewer lost the end of a reason that way. Shown
// under each textarea with a maxlength; read out (aria-live) only near the limit, so a screen
// reader is not told the count at every key.
(function () {
  "use strict";
  var NEAR = 0.9;
  function attach(box) {
    if (box.dataset.charCount) { return; }
    var limit = parseInt(box.getAttribute("maxlength"), 10);
    if (!limit) { return; }
    box.dataset.charCount = "1";
    var count = document.createElement("span");
    count.className = "char-count muted small";
    count.id = (box.id || "box") + "-char-count";
    box.insertAdjacentElement("afterend", count);
    function update() {
      var used = box.value.length;
      count.textContent = used + " of " + limit + " characters" +
        (used >= limit ? ": the limit (anything typed or pasted past it is cut off)" : "");
      var near = used >= limit * NEAR;
      count.setAttribute("aria-live", near ? "polite" : "off");
      count.classList.toggle("at-limit", used >= limit);
    }
    box.addEventListener("input", update);
    update();
  }
  function attachAll(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("textarea[maxlength]").forEach(attach);
  }
  document.addEventListener("DOMContentLoaded", function () { attachAll(document); });
  document.addEventListener("htmx:load", function (event) { attachAll(event.target); });
})();
