// Progressive help on patient pages; every page works without it.
(function () {
  "use strict";

  // The time left to fill the form while a slot is kept.
  var countdown = document.querySelector("[data-countdown]");
  if (countdown) {
    var deadline = Date.now() + parseInt(countdown.getAttribute("data-countdown"), 10) * 1000;
    var tick = function () {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      if (left === 0) {
        countdown.textContent = countdown.getAttribute("data-expired");
        return;
      }
      var minutes = Math.floor(left / 60);
      var seconds = String(left % 60).padStart(2, "0");
      countdown.textContent = countdown.getAttribute("data-label") + " " + minutes + ":" + seconds;
      window.setTimeout(tick, 1000);
    };
    tick();
  }

  // Opt-in location: read by the browser, put in the search form, sent nowhere else.
  var locate = document.getElementById("locate");
  if (locate && navigator.geolocation) {
    locate.hidden = false;
    var status = document.getElementById("locate-status");
    locate.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(
        function (position) {
          document.getElementById("latitude").value = position.coords.latitude.toFixed(4);
          document.getElementById("longitude").value = position.coords.longitude.toFixed(4);
          status.textContent = locate.getAttribute("data-located");
        },
        function () {
          status.textContent = locate.getAttribute("data-failed");
        },
        { maximumAge: 600000, timeout: 10000 }
      );
    });
  }

  // Another week (or visit) loaded in place by htmx: take the keyboard and the screen reader
  // to its title, as a new page would.
  document.body.addEventListener("htmx:afterSettle", function () {
    var title = document.getElementById("week-title");
    if (title) {
      title.setAttribute("tabindex", "-1");
      title.focus();
    }
  });

  // Inside a widget: tell the hospital page (and only it) how tall the content is.
  var origins = (document.body.getAttribute("data-embed-origins") || "").split(" ").filter(Boolean);
  if (origins.length && window.parent !== window) {
    var parentOrigin = null;
    if (window.location.ancestorOrigins && window.location.ancestorOrigins.length) {
      parentOrigin = window.location.ancestorOrigins[0];
    } else if (document.referrer) {
      parentOrigin = new URL(document.referrer).origin;
    }
    if (parentOrigin && origins.indexOf(parentOrigin) !== -1) {
      var send = function () {
        window.parent.postMessage(
          { type: "creneau:height", height: Math.ceil(document.body.getBoundingClientRect().height) },
          parentOrigin
        );
      };
      send();
      if (window.ResizeObserver) {
        new ResizeObserver(send).observe(document.body);
      }
      window.addEventListener("load", send);
    }
  }
})();
