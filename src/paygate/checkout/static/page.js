/* paygate hosted checkout: progressive enhancement for the card form.
 * The form works without this file (it POSTs and the server validates). This adds: card number formatting and
 * brand detection, Luhn / expiry / CVC checks with accessible inline errors, an error summary, the expiry
 * countdown, and a pay button that disables while the payment is in flight. No network calls, no globals,
 * no inline styles (the page's CSP forbids them). Card values are never logged or stored. */
(function () {
  "use strict";

  var form = document.getElementById("pay-form");
  if (!form) { return; }

  var $ = function (id) { return document.getElementById(id); };
  var number = $("number"), exp = $("exp"), cvc = $("cvc"), holder = $("name");
  var country = $("country"), postal = $("postal_code");
  var brandBadge = $("number-brand"), alertBox = $("form-alert"), alertTitle = $("form-alert-title");
  var alertText = $("form-alert-text"), alertList = $("form-alert-list");
  var payButton = $("pay-button"), payLabel = $("pay-label"), payStatus = $("pay-status");
  var countdownBox = $("countdown"), countdownTime = $("countdown-time"), countdownAnnounce = $("countdown-announce");

  form.noValidate = true; // this script validates with accessible messages instead of the browser bubbles
  var payText = payLabel.textContent;
  var submitting = false;
  var expired = false;
  var touched = {};

  /* ---------- card brands ---------- */
  var BRANDS = [
    { id: "amex", label: "Amex", test: /^3[47]/, gaps: [4, 10], lengths: [15], cvc: 4 },
    { id: "diners", label: "Diners", test: /^3(?:0[0-5]|[689])/, gaps: [4, 10], lengths: [14, 15, 16, 17, 18, 19], cvc: 3 },
    { id: "discover", label: "Discover", test: /^(?:6011|64[4-9]|65)/, gaps: [4, 8, 12], lengths: [16, 19], cvc: 3 },
    { id: "jcb", label: "JCB", test: /^35/, gaps: [4, 8, 12], lengths: [16, 17, 18, 19], cvc: 3 },
    { id: "unionpay", label: "UnionPay", test: /^62/, gaps: [4, 8, 12], lengths: [16, 17, 18, 19], cvc: 3 },
    { id: "mastercard", label: "Mastercard", test: /^(?:5[1-5]|222[1-9]|22[3-9]|2[3-6]|27[01]|2720)/, gaps: [4, 8, 12], lengths: [16], cvc: 3 },
    { id: "visa", label: "Visa", test: /^4/, gaps: [4, 8, 12], lengths: [13, 16, 19], cvc: 3 }
  ];
  var GENERIC = { id: "", label: "", gaps: [4, 8, 12], lengths: [12, 13, 14, 15, 16, 17, 18, 19], cvc: 3 };

  function digitsOf(value) { return value.replace(/\D/g, ""); }

  function brandOf(digits) {
    for (var i = 0; i < BRANDS.length; i++) {
      if (BRANDS[i].test.test(digits)) { return BRANDS[i]; }
    }
    return GENERIC;
  }

  function maxLength(brand) { return brand.lengths[brand.lengths.length - 1]; }

  function formatNumber(digits, brand) {
    var out = "";
    for (var i = 0; i < digits.length; i++) {
      if (brand.gaps.indexOf(i) !== -1) { out += " "; }
      out += digits.charAt(i);
    }
    return out;
  }

  function luhn(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1) { d = d * 2; if (d > 9) { d -= 9; } }
      sum += d;
    }
    return sum % 10 === 0;
  }

  /* Reformat an input while keeping the caret after the same number of digits. */
  function reformat(input, formatter) {
    var value = input.value;
    var caret = input.selectionStart === null ? value.length : input.selectionStart;
    var digitsBefore = digitsOf(value.slice(0, caret)).length;
    var next = formatter(value);
    if (next === value) { return; }
    input.value = next;
    if (document.activeElement !== input) { return; }
    var pos = 0, seen = 0;
    while (pos < next.length && seen < digitsBefore) {
      if (/\d/.test(next.charAt(pos))) { seen++; }
      pos++;
    }
    input.setSelectionRange(pos, pos);
  }

  function currentBrand() { return brandOf(digitsOf(number.value)); }

  function showBrand() {
    var brand = currentBrand();
    if (brandBadge.getAttribute("data-brand") !== brand.id) {
      brandBadge.setAttribute("data-brand", brand.id);
      brandBadge.textContent = brand.label;
    }
    cvc.maxLength = brand.cvc;
  }

  /* ---------- expiry ---------- */
  function parseExpiry(value) {
    var m = /^\s*(\d{1,2})\s*[\/\-. ]?\s*(\d{2}|\d{4})\s*$/.exec(value);
    if (!m) {
      var d = digitsOf(value);
      if (d.length === 4) { m = [d, d.slice(0, 2), d.slice(2)]; }
      else if (d.length === 6) { m = [d, d.slice(0, 2), d.slice(2)]; }
      else { return null; }
    }
    var month = parseInt(m[1], 10), year = parseInt(m[2], 10);
    if (m[2].length === 2) { year += 2000; }
    return { month: month, year: year };
  }

  function formatExpiry(value) {
    var full = /^\s*(\d{1,2})\s*[\/\-]\s*(\d{4})\s*$/.exec(value); // autofill may give "12/2034"
    if (full) { return (full[1].length === 1 ? "0" + full[1] : full[1]) + " / " + full[2].slice(2); }
    var d = digitsOf(value);
    if (d.length === 1 && d > "1") { d = "0" + d; } // "4" -> "04 / "
    if (d.length >= 3 && d.charAt(0) > "1") { d = "0" + d; }
    d = d.slice(0, 4);
    if (d.length > 2) { return d.slice(0, 2) + " / " + d.slice(2); }
    if (d.length === 2 && value.length > 2 && /[\/\s]$/.test(value)) { return d + " / "; }
    return d;
  }

  /* ---------- validation (messages match the server's) ---------- */
  var checks = {
    number: function () {
      var digits = digitsOf(number.value), brand = currentBrand();
      if (!digits) { return "Enter your card number."; }
      if (/[^\d\s\-]/.test(number.value)) { return "Your card number is invalid."; }
      if (digits.length < Math.min.apply(null, brand.lengths)) { return "Your card number is incomplete."; }
      if (digits.length > maxLength(brand) || !luhn(digits)) { return "Your card number is invalid."; }
      return "";
    },
    exp: function () {
      if (!exp.value.trim()) { return "Enter your card's expiry date."; }
      var parsed = parseExpiry(exp.value);
      if (!parsed) { return "Your card's expiry date is incomplete."; }
      if (parsed.month < 1 || parsed.month > 12) { return "Your card's expiry month is invalid."; }
      var now = new Date(), y = now.getFullYear(), mo = now.getMonth() + 1;
      if (parsed.year < y || (parsed.year === y && parsed.month < mo)) { return "Your card's expiry date is in the past."; }
      if (parsed.year > y + 20) { return "Your card's expiry year is invalid."; }
      return "";
    },
    cvc: function () {
      var value = cvc.value.trim(), need = currentBrand().cvc;
      if (!value) { return "Enter your card's security code."; }
      if (!/^\d+$/.test(value)) { return "Your card's security code is invalid."; }
      if (value.length < need) { return "Your card's security code is incomplete."; }
      if (value.length > need) { return "Your card's security code is invalid."; }
      return "";
    },
    name: function () {
      return holder.value.trim() ? "" : "Enter the name on your card.";
    },
    country: function () {
      return country.value ? "" : "Select your billing country or region.";
    },
    postal_code: function () {
      var value = postal.value.trim();
      if (!value) { return postalRequired() ? "Enter your postal code." : ""; }
      if (country.value === "US" && !/^\d{5}(?:-?\d{4})?$/.test(value)) { return "Your ZIP code is invalid."; }
      if (!/^[A-Za-z0-9][A-Za-z0-9 \-]{1,9}$/.test(value)) { return "Your postal code is invalid."; }
      return "";
    }
  };
  var fields = { number: number, exp: exp, cvc: cvc, name: holder, country: country, postal_code: postal };
  var order = ["number", "exp", "cvc", "name", "country", "postal_code"];

  function postalRequired() {
    var list = (postal.getAttribute("data-required-for") || "").split(" ");
    return list.indexOf(country.value) !== -1;
  }

  function syncPostalRequired() {
    var required = postalRequired();
    postal.required = required;
    $("postal-optional").hidden = required;
  }

  function setError(key, message) {
    var input = fields[key], slot = $(key + "-error");
    if (message) {
      input.setAttribute("aria-invalid", "true");
      input.closest(".field").classList.add("has-error");
    } else {
      input.removeAttribute("aria-invalid");
      input.closest(".field").classList.remove("has-error");
    }
    if (slot.textContent !== message) { slot.textContent = message; }
  }

  function validate(key) {
    var message = checks[key]();
    setError(key, message);
    return message;
  }

  function clearAlert() {
    alertBox.hidden = true;
    alertText.textContent = "";
    while (alertList.firstChild) { alertList.removeChild(alertList.firstChild); }
  }

  function showSummary(problems) {
    clearAlert();
    alertBox.className = "alert";
    alertTitle.textContent = problems.length === 1 ? "Please correct 1 field" : "Please correct " + problems.length + " fields";
    problems.forEach(function (problem) {
      var item = document.createElement("li"), link = document.createElement("a");
      link.href = "#" + problem.key;
      link.textContent = problem.message;
      link.addEventListener("click", function (event) {
        event.preventDefault();
        fields[problem.key].focus();
      });
      item.appendChild(link);
      alertList.appendChild(item);
    });
    alertBox.hidden = false;
  }

  /* ---------- input handlers ---------- */
  number.addEventListener("input", function () {
    reformat(number, function (value) {
      var digits = digitsOf(value), brand = brandOf(digits);
      return formatNumber(digits.slice(0, maxLength(brand)), brand);
    });
    showBrand();
    if (touched.number) { validate("number"); }
  });

  exp.addEventListener("input", function (event) {
    if (event.inputType && event.inputType.indexOf("delete") === 0) { return; } // let people delete the " / "
    reformat(exp, formatExpiry);
    if (touched.exp) { validate("exp"); }
  });

  cvc.addEventListener("input", function () {
    reformat(cvc, function (value) { return digitsOf(value).slice(0, currentBrand().cvc); });
    if (touched.cvc) { validate("cvc"); }
  });

  postal.addEventListener("input", function () { if (touched.postal_code) { validate("postal_code"); } });
  holder.addEventListener("input", function () { if (touched.name) { validate("name"); } });
  country.addEventListener("change", function () {
    syncPostalRequired();
    validate("country");
    if (touched.postal_code) { validate("postal_code"); }
  });

  order.forEach(function (key) {
    fields[key].addEventListener("blur", function (event) {
      // Moving to the pay button: the submit check follows, and a message appearing now would shift the button
      // away from under the pointer before the click lands.
      if (submitting || event.relatedTarget === payButton) { return; }
      if (fields[key].value.trim() || touched[key]) {
        touched[key] = true;
        validate(key);
      }
    });
  });

  /* ---------- submit ---------- */
  function setBusy(busy) {
    submitting = busy;
    payButton.disabled = busy;
    payButton.setAttribute("data-busy", busy ? "true" : "false");
    payLabel.textContent = busy ? "Processing…" : payText;
    payStatus.textContent = busy ? "Processing your payment, please wait." : "";
    order.forEach(function (key) {
      if (fields[key].tagName === "INPUT") { fields[key].readOnly = busy; }
    });
  }

  form.addEventListener("submit", function (event) {
    if (submitting || expired) { event.preventDefault(); return; }
    var problems = [];
    order.forEach(function (key) {
      touched[key] = true;
      var message = validate(key);
      if (message) { problems.push({ key: key, message: message }); }
    });
    if (problems.length) {
      event.preventDefault();
      showSummary(problems);
      fields[problems[0].key].focus();
      return;
    }
    clearAlert();
    setBusy(true); // the browser now POSTs the form; the server answers with a redirect or this page again
  });

  // Back/forward cache: a page restored after leaving for 3-D Secure must be usable again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { setBusy(false); }
  });

  /* ---------- expiry countdown ---------- */
  var expiresAt = parseInt(form.getAttribute("data-expires-at"), 10);
  var serverNow = parseInt(form.getAttribute("data-server-now"), 10);
  var skew = serverNow * 1000 - Date.now(); // trust the server's clock, not the device's
  var announced = {};

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function remainingSeconds() { return Math.floor((expiresAt * 1000 - (Date.now() + skew)) / 1000); }

  function expire() {
    expired = true;
    setBusy(false);
    payButton.disabled = true;
    form.setAttribute("data-expired", "true");
    order.forEach(function (key) {
      if (fields[key].tagName === "INPUT") { fields[key].readOnly = true; } else { fields[key].disabled = true; }
    });
    clearAlert();
    alertBox.className = "alert";
    alertTitle.textContent = "This checkout has expired";
    alertText.textContent = "For your security, payment details can no longer be submitted here. Return to the merchant to start again.";
    alertBox.hidden = false;
    $("countdown-text").textContent = "This checkout has expired.";
    countdownBox.setAttribute("data-urgent", "true");
    alertBox.focus();
  }

  function tick() {
    if (expired || isNaN(expiresAt) || isNaN(serverNow)) { return; }
    var left = remainingSeconds();
    if (left <= 0) { expire(); return; }
    var hours = Math.floor(left / 3600), minutes = Math.floor((left % 3600) / 60), seconds = left % 60;
    countdownTime.textContent = hours ? hours + ":" + pad(minutes) + ":" + pad(seconds) : minutes + ":" + pad(seconds);
    countdownBox.setAttribute("data-urgent", left <= 120 ? "true" : "false");
    [300, 60].forEach(function (mark) {
      if (left <= mark && left > mark - 5 && !announced[mark]) {
        announced[mark] = true;
        countdownAnnounce.textContent = "This checkout expires in " + (mark / 60) + (mark === 60 ? " minute." : " minutes.");
      }
    });
    window.setTimeout(tick, 1000 - ((Date.now() + skew) % 1000) + 5);
  }

  /* ---------- start ---------- */
  syncPostalRequired();
  showBrand();
  tick();
  var cleanUrl = form.getAttribute("data-clean-url");
  if (cleanUrl && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", cleanUrl); // drop 3-D Secure return parameters from the address bar
  }
  if (!expired) {
    var firstInvalid = form.querySelector("[aria-invalid='true']");
    if (firstInvalid) { firstInvalid.focus(); }
    else if (!alertBox.hidden) { alertBox.focus(); }
  }
})();
