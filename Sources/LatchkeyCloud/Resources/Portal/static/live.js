// The request page follows its request live: a countdown to expiry, and a reload whenever a notification about
// this request arrives (approved, completed, declined, cancelled, expired). No dependencies.
(function () {
  "use strict";
  var section = document.getElementById("request");
  if (!section) { return; }
  var id = (section.getAttribute("data-id") || "").toLowerCase();
  var expires = Date.parse(section.getAttribute("data-expires"));
  var output = document.getElementById("countdown");
  var reloading = false;

  function reload() {
    if (reloading) { return; }
    reloading = true;
    window.location.reload();
  }

  function format(seconds) {
    var s = Math.max(0, seconds);
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    var mm = (h > 0 && m < 10 ? "0" : "") + m, rr = (r < 10 ? "0" : "") + r;
    return (h > 0 ? h + ":" : "") + mm + ":" + rr;
  }

  if (output && !isNaN(expires)) {
    var tick = function () {
      var left = Math.ceil((expires - Date.now()) / 1000);
      output.textContent = format(left);
      if (left <= 0) { window.setTimeout(reload, 1000); return; }
      window.setTimeout(tick, 1000);
    };
    tick();
  }

  if (window.EventSource) {
    var events = new EventSource("/events");
    events.addEventListener("notification", function (event) {
      try {
        var notification = JSON.parse(event.data);
        if ((notification.requestId || "").toLowerCase() === id) { reload(); }
      } catch (e) { /* not ours */ }
    });
  }
})();
