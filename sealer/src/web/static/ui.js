// The dashboard's only script: every element with data-refresh="URL" has its content replaced
// by that URL's fragment every data-every seconds (3 by default). Same origin only (the page's
// Content-Security-Policy allows nothing else). A 401 goes back to the login form.
(function () {
  "use strict";
  var status = document.getElementById("refresh-status");
  function say(text, stale) {
    if (status) {
      status.textContent = text;
      status.className = stale ? "stale" : "";
    }
  }
  function refresh(el) {
    fetch(el.getAttribute("data-refresh"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          window.location.href = "/ui/login";
          return null;
        }
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        el.innerHTML = html;
        var n = (parseInt(el.getAttribute("data-refreshed") || "0", 10) || 0) + 1;
        el.setAttribute("data-refreshed", String(n));
        say("updated " + new Date().toLocaleTimeString(), false);
      })
      .catch(function (e) {
        say("not updated: " + e.message, true);
      });
  }
  // Forms with data-confirm ask first (abort a job, remove a sector).
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      e.preventDefault();
    }
  });
  var els = document.querySelectorAll("[data-refresh]");
  Array.prototype.forEach.call(els, function (el) {
    var every = parseFloat(el.getAttribute("data-every") || "3") * 1000;
    setInterval(function () { refresh(el); }, every);
  });
})();
