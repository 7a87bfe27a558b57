// Times in the reader's own zone and the page's language (26/11/2026, 10:59 in Italian); the server writes UTC.
(function () {
  "use strict";
  var language = document.documentElement.lang || "en";
  var format = new Intl.DateTimeFormat(language === "it" ? "it-IT" : "en-GB",
    { day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit" });
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var at = Date.parse(times[i].getAttribute("datetime"));
    if (!isNaN(at)) { times[i].textContent = format.format(new Date(at)); }
  }
})();
