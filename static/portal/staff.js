// Staff pages' behaviour that needs script, kept out of the page: the Content-Security-Policy allows
// scripts from this site only, never inline ones (portal/settings.py CONTENT_SECURITY_POLICY).
// A <select data-autosubmit> submits its form when an option is chosen (the tenant switcher);
// without script the form's <noscript> button does the same.
"use strict";
document.addEventListener("change", (event) => {
  const select = event.target;
  if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit") && select.form) {
    select.form.requestSubmit();
  }
});
